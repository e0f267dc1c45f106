#!/usr/bin/env bash
# Builds the C examples to WebAssembly (WASI preview 1) with Debian's toolchain:
#   apt-get install -y --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32
# Usage: examples/build.sh [OUT_DIR]   (default: target/examples)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../target/examples}"
mkdir -p "$out"
for src in "$here"/*.c; do
    name="$(basename "$src" .c)"
    clang --target=wasm32-wasi -O2 -o "$out/$name.wasm" "$src"
    echo "built $out/$name.wasm ($(stat -c %s "$out/$name.wasm") bytes)"
done
