#!/usr/bin/env bash
# Algorithmia client compatibility suites for algohub.
#
# The two Python clients cannot share one environment (reference §0):
#   HL  = algorithmia==2.0.5 (pins algorithmia-api-client==1.5.1, needs DefaultApi)
#   GEN = algorithmia-api-client==1.5.5 (split APIs, no DefaultApi)
# so each gets its own virtualenv under $COMPAT_VENV_DIR.
#
# Environment:
#   COMPAT_VENV_DIR  where the venvs live (default /work/main/target/compat-venvs)
#   ALGOHUB_BIN      the server binary (default /work/main/target/debug/algohub;
#                    build it with `cargo build -p algohub`)
#   PYTHON           the interpreter that creates the venvs (default python3)
# Extra arguments are passed to both pytest runs (e.g. -k members, -x).
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="${COMPAT_VENV_DIR:-/work/main/target/compat-venvs}"
export ALGOHUB_BIN="${ALGOHUB_BIN:-/work/main/target/debug/algohub}"
PYTHON="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$ALGOHUB_BIN" ]; then
    echo "run.sh: no algohub binary at $ALGOHUB_BIN (run: cargo build -p algohub, or set ALGOHUB_BIN)" >&2
    exit 2
fi

# make_venv NAME REQUIREMENTS: creates or reuses $VENVS/NAME and installs the
# requirements unless the same file was already installed there.
make_venv() {
    local dir="$VENVS/$1" req="$HERE/$2" stamp
    stamp="$dir/.requirements.sha256"
    if [ ! -x "$dir/bin/python" ]; then
        mkdir -p "$VENVS"
        "$PYTHON" -m venv "$dir" || return 1
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum "$req" | cut -d' ' -f1)" ]; then
        return 0
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" || return 1
    sha256sum "$req" | cut -d' ' -f1 > "$stamp"
}

# count WORD FILE: the number before WORD on pytest's closing line (0 if none).
count() {
    local line
    line="$(grep -E '(passed|failed|error|no tests ran)' "$2" | tail -n 1)"
    echo "$line" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0
}

overall=0
total_passed=0
total_failed=0
summary=()

# run_suite LABEL VENV REQUIREMENTS TESTS MINIMUM [pytest args]: a suite fails
# when pytest fails, when any test was skipped (an import failure of a client
# is an error, never a skip), or when fewer than MINIMUM tests passed (unless
# pytest args select a subset).
run_suite() {
    local label="$1" venv="$2" req="$3" tests="$4" minimum="$5"
    shift 5
    local log rc passed failed errors skipped
    log="$(mktemp)"
    if ! make_venv "$venv" "$req"; then
        summary+=("$label: SETUP FAILED (could not create $VENVS/$venv from $req)")
        overall=1
        return
    fi
    echo "=== $label: $("$VENVS/$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | grep -iE '^(algorithmia|algorithmia-api-client|pytest)==' | tr '\n' ' ')"
    # $tests is a space-separated list of test files (word splitting intended).
    # shellcheck disable=SC2086
    (cd "$HERE" && "$VENVS/$venv/bin/python" -m pytest -q -p no:cacheprovider $tests "$@") 2>&1 | tee "$log"
    rc="${PIPESTATUS[0]}"
    passed="$(count passed "$log")"
    failed="$(count failed "$log")"
    errors="$(count error "$log")"
    skipped="$(count skipped "$log")"
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed + errors))
    if [ "$#" -gt 0 ]; then
        minimum=1 # a subset was asked for
    fi
    if [ "$rc" -ne 0 ]; then
        summary+=("$label: FAILED (pytest exit $rc: $passed passed, $failed failed, $errors errors, $skipped skipped)")
        overall=1
    elif [ "$skipped" -ne 0 ]; then
        summary+=("$label: FAILED ($skipped skipped: every test must run)")
        overall=1
    elif [ "$passed" -lt "$minimum" ]; then
        summary+=("$label: FAILED (only $passed passed, at least $minimum expected)")
        overall=1
    else
        summary+=("$label: OK ($passed passed, at least $minimum expected)")
    fi
    rm -f "$log"
}

# Each suite runs all of its files in its own venv: HL (management, algorithms
# and calls, data API and the `algo` CLI) and GEN (management, algorithms and
# calls, data connector API).
# The minimums are the counts when they were last raised: raise them as tests
# are added, never lower them to get a green run.
run_suite "HL suite (algorithmia 2.0.5)" hl requirements-hl.txt \
    "test_hl_management.py test_hl_algorithms.py test_hl_data.py test_email.py" 65 "$@"
run_suite "GEN suite (algorithmia-api-client 1.5.5)" gen requirements-gen.txt \
    "test_gen_management.py test_gen_algorithms.py test_gen_data.py" 83 "$@"

echo
echo "=== compatibility summary"
for line in "${summary[@]}"; do
    echo "$line"
done
echo "compat: $total_passed passed, $total_failed failed"
exit "$overall"
