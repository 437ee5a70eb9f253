#!/usr/bin/env bash
# Builds the WASM test modules from the C sources beside this script.
# Usage: build.sh OUTPUT_DIR   (needs Debian's clang, lld and wasi-libc)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?output directory}
mkdir -p "$out"
cc=$(command -v clang-14 || command -v clang)
for src in "$here"/*.c; do
    name=$(basename "$src" .c)
    if [ "$name" = mathlib ]; then
        "$cc" --target=wasm32-wasi -O2 -nostdlib -Wl,--no-entry -o "$out/$name.wasm" "$src"
    else
        "$cc" --target=wasm32-wasi -O2 -o "$out/$name.wasm" "$src"
    fi
done
