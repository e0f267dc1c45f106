"""Helpers shared by the HL test modules (algorithmia 2.0.5; HL venv only).

`Recorder` wraps an HL client's requests session and keeps every exchange, so
tests can check what went over the wire and that no 2xx JSON body carries an
`error` key (HL tests `'error' in body` and crashes on `"error": null`, §1.4).
"""

import json
from urllib.parse import parse_qsl, urlsplit


class Recorder:
    """Wraps a client's requests session and keeps (method, url, request body, response)."""

    def __init__(self, client):
        self.calls = []
        session = client.requestSession
        original = session.request

        def request(method, url, *args, **kwargs):
            resp = original(method, url, *args, **kwargs)
            self.calls.append((method.upper(), url, kwargs.get("data"), resp))
            return resp

        session.request = request

    def matching(self, method, path_suffix):
        return [
            (data, resp)
            for m, url, data, resp in self.calls
            if m == method and resp.request.path_url.split("?")[0].endswith(path_suffix)
        ]

    def last(self, method, path_suffix):
        found = self.matching(method, path_suffix)
        if not found:
            raise AssertionError(
                "no %s ...%s recorded: %s" % (method, path_suffix, [(m, u) for m, u, _, _ in self.calls])
            )
        return found[-1]

    def check_no_error_key_in_success(self):
        for method, url, _, resp in self.calls:
            if 200 <= resp.status_code < 300 and resp.content:
                try:
                    body = resp.json()
                except ValueError:
                    continue
                # HL tests `'error' in body` on the parsed body: for a dict that is
                # a key, for a list (e.g. the error listing, whose entries carry an
                # `error` string by the docs) it is list membership, not a key.
                items = [body] if isinstance(body, dict) else []
                for item in items:
                    if (
                        resp.request.path_url.startswith("/v1/algo/")
                        and isinstance(item, dict)
                        and isinstance(item.get("error"), dict)
                        and "result" not in item
                    ):
                        continue  # an algorithm error: HTTP 200 with an error object (§2)
                    assert not (isinstance(item, dict) and "error" in item), (
                        "%s %s answered %d with an `error` key in a success body: %s"
                        % (method, url, resp.status_code, resp.text)
                    )


def make_hl_fixture(Algorithmia, server):
    """A factory of recorded HL clients; returns (make, recorders)."""
    recorders = []

    def make(key=None, address=None):
        c = Algorithmia.client(key or server.admin_key, api_address=address or server.base_url)
        c.recorder = Recorder(c)
        recorders.append(c.recorder)
        return c

    return make, recorders


def error_json(resp):
    """The `error` object of a non-2xx JSON response."""
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), resp.text
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], resp.text
    return body["error"]


def query_of(resp):
    """The query parameters HL sent, as a dict of str."""
    return dict(parse_qsl(urlsplit(resp.request.url).query, keep_blank_values=True))


def sent_json(data):
    if isinstance(data, (bytes, bytearray)):
        data = data.decode()
    return json.loads(data)

