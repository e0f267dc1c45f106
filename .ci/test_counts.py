#!/usr/bin/env python3
"""Reads `cargo test` output and checks what ran, suite by suite.

usage: test_counts.py LOG MINIMUMS

LOG is the output of `cargo test` (libtest's default format: one
`test NAME ... ok|FAILED|ignored` line per test, each binary after a
`Running ...` line). MINIMUMS has one `SUITE MIN` line per suite (a suite is
the binary's source path, e.g. `tests/api/main.rs`, or `unittests src/lib.rs
(algohub_core)` shortened to the crate: `algohub_core lib`).

It prints a table of passed / failed / ignored per suite, and for suites whose
tests are named `sqlite::...` and `postgres::...` the count on each backend.
It fails (exit 1) when a test failed, when any test was ignored (CI has every
service, so nothing may be skipped), when a suite ran fewer tests than its
minimum, when a suite in MINIMUMS did not run at all, or when the PostgreSQL
run of a suite executed fewer tests than its SQLite run.
"""
import re
import sys
from collections import OrderedDict

RUNNING = re.compile(r"^\s*Running (?:unittests )?(\S+) \(target/[^/]+/deps/([A-Za-z0-9_]+)-[0-9a-f]+\)")
DOCTESTS = re.compile(r"^\s*Doc-tests (\S+)")
RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)(?:, .*)?$")


def suite_name(path, binary):
    if path.startswith("src/"):
        return f"{binary} {path.split('/')[-1].removesuffix('.rs')}"
    return f"{binary} {path}"


def parse(lines):
    suites = OrderedDict()
    current = None
    for line in lines:
        m = RUNNING.match(line)
        if m:
            current = suite_name(m.group(1), m.group(2))
            suites.setdefault(current, [])
            continue
        m = DOCTESTS.match(line)
        if m:
            current = f"{m.group(1)} doc-tests"
            suites.setdefault(current, [])
            continue
        m = RESULT.match(line)
        if m and current is not None:
            suites[current].append((m.group(1), m.group(2)))
    return suites


def main():
    log, minimums_file = sys.argv[1], sys.argv[2]
    with open(log, encoding="utf-8", errors="replace") as f:
        suites = parse(f.read().splitlines())
    minimums = {}
    with open(minimums_file, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, n = line.rsplit(None, 1)
                minimums[name] = int(n)
    problems = []
    rows = []
    for name, tests in suites.items():
        count = lambda outcome, prefix="": sum(1 for t, o in tests if o == outcome and t.startswith(prefix))
        passed, failed, ignored = count("ok"), count("FAILED"), count("ignored")
        backends = ""
        sqlite, postgres = count("ok", "sqlite::"), count("ok", "postgres::")
        if sqlite or postgres:
            pg_only = count("ok", "postgres_only::")
            backends = f"sqlite {sqlite}, postgres {postgres}" + (f" (+{pg_only} postgres only)" if pg_only else "")
            if postgres < sqlite:
                problems.append(f"{name}: PostgreSQL ran {postgres} tests, SQLite {sqlite}")
        rows.append((name, passed, failed, ignored, backends))
        if failed:
            problems.append(f"{name}: {failed} failed")
        if ignored:
            names = ", ".join(t for t, o in tests if o == "ignored")
            problems.append(f"{name}: {ignored} ignored ({names})")
        minimum = minimums.get(name)
        if minimum is not None and passed < minimum:
            problems.append(f"{name}: {passed} passed, at least {minimum} expected")
    for name in minimums:
        if name not in suites:
            problems.append(f"{name}: did not run")
    width = max([len(r[0]) for r in rows] + [5])
    print(f"{'suite':<{width}}  passed  failed  ignored  by backend")
    for name, passed, failed, ignored, backends in rows:
        if passed or failed or ignored or name in minimums:
            print(f"{name:<{width}}  {passed:>6}  {failed:>6}  {ignored:>7}  {backends}")
    total = sum(r[1] for r in rows)
    print(f"{'total':<{width}}  {total:>6}  {sum(r[2] for r in rows):>6}  {sum(r[3] for r in rows):>7}")
    if problems:
        print("\nTEST COUNT CHECK FAILED:")
        for p in problems:
            print(f"  {p}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
