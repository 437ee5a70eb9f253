#!/usr/bin/env bash
# Builds Cod, starts a local devstack (1 orchestrator + 3 compute nodes), runs the sample WASM
# job on it, downloads its results, and stops the devstack.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
swift build --product cod
cod=.build/debug/cod
work=$(mktemp -d)
clang-14 --target=wasm32-wasi -O2 -o "$work/hello.wasm" examples/hello/hello.c

port=${COD_DEMO_PORT:-1234}
"$cod" devstack --port "$port" --data-dir "$work/devstack" > "$work/devstack.out" 2> "$work/devstack.log" &
devstack=$!
trap 'kill $devstack 2>/dev/null; wait $devstack 2>/dev/null || true' EXIT
export COD_API_PORT=$port
for _ in $(seq 100); do
    "$cod" agent alive >/dev/null 2>&1 && break
    sleep 0.1
done
sleep 1
echo "== cod node list"
"$cod" node list
echo
echo "== cod wasm run hello.wasm Cod --count 3"
"$cod" wasm run "$work/hello.wasm" Cod --count 3
id=$("$cod" job list --limit 1 --output json | sed -n 's/.*"ID" : "\(j-[^"]*\)".*/\1/p' | head -1)
echo
echo "== cod job get $id"
"$cod" job get "$id" --output-dir "$work/results"
find "$work/results" -type f | sort
echo
cat "$work/results/outputs/greeting.txt"
