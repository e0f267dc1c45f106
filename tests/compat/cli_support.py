"""Runs the HL console script `algo` (algorithmia 2.0.5; HL venv only).

`algo auth` refuses any address that does not start with `https://api.`, so the
tests write `~/.algorithmia/config` themselves into a temporary HOME (§1.1, §1.2).
"""

import os
import subprocess
import sys


def write_cli_config(tmp_path, api_server, api_key, profile="default"):
    """Writes <tmp>/home/.algorithmia/config (TOML) and returns the HOME to use."""
    home = tmp_path / "home"
    (home / ".algorithmia").mkdir(parents=True, exist_ok=True)
    (home / ".algorithmia" / "config").write_text(
        "[profiles]\n"
        "[profiles.%s]\n"
        "api_key = \"%s\"\n"
        "api_server = \"%s\"\n"
        "ca_cert = \"\"\n"
        "bearer_token = \"\"\n" % (profile, api_key, api_server)
    )
    return str(home)


def algo_executable():
    path = os.path.join(os.path.dirname(sys.executable), "algo")
    assert os.access(path, os.X_OK), "no `algo` console script next to %s" % sys.executable
    return path


def run_cli(home, *args, cwd=None, check=True):
    """Runs `algo <args>` with HOME=home; returns stdout (asserting exit 0 unless check=False)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALGORITHMIA_") and k != "REQUESTS_CA_BUNDLE"}
    env["HOME"] = home
    p = subprocess.run(
        [algo_executable(), *args],
        env=env,
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert p.returncode == 0, "algo %s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr[-3000:])
        return p.stdout
    return p
