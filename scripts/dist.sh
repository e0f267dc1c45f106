#!/usr/bin/env bash
# Builds the algohub binary to ship, small, with its line tables kept beside it:
#   OUT_DIR/algohub        the server, without debug info (about 43 MB)
#   OUT_DIR/algohub.debug  its line tables, compressed (about 45 MB); keep it with
#                          the binary
# A panic's backtrace (RUST_BACKTRACE=1) gives file and line when algohub.debug is
# in the binary's directory (or under /usr/lib/debug/.build-id/, by build id), and
# only the functions without it. Needs objcopy (binutils).
# Usage: scripts/dist.sh [OUT_DIR]   (default: target/dist/out in the repository)
set -euo pipefail
out="$(realpath -m "${1:-$(dirname "$0")/../target/dist/out}")"
cd "$(dirname "$0")/.."
command -v objcopy >/dev/null || { echo "scripts/dist.sh needs objcopy (binutils)" >&2; exit 1; }
cargo build --profile dist -p algohub
built="$PWD/target/dist/algohub"
mkdir -p "$out"
objcopy --only-keep-debug --compress-debug-sections=zlib "$built" "$out/algohub.debug"
# The link names the file only (no directory), so it is looked up beside the binary.
(cd "$out" && objcopy --strip-debug --add-gnu-debuglink=algohub.debug "$built" algohub)
ls -l "$built" "$out/algohub" "$out/algohub.debug"
