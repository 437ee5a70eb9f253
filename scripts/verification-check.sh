#!/usr/bin/env bash
# 200 seeded verified jobs (Replicas 2, Quorum 2, Distinct node) on a devstack of 5 nodes whose
# last node lies (corrupt, empty or random, the first argument): prints each node's reputation
# and how many accepted results were wrong. COD=path/to/cod picks the binary.
set -euo pipefail
mode=${1:-corrupt}
C=${COD:-.build-release/release/cod}
dir=$(mktemp -d /tmp/verify200-XXXX)
$C devstack --computes 5 --bad-nodes 1 --bad-mode "$mode" --data-dir "$dir/data" --port 0 > "$dir/out" 2> "$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q COD_API_KEY "$dir/out" 2>/dev/null && break; sleep 0.2; done
eval "$(grep export "$dir/out")"
sleep 2
ids=()
for i in $(seq 1 200); do
  ids+=("$($C exec --verify verified --replicas 2 --quorum 2 --max-replicas 5 --wait=false --id-only -e SEED=$i -- sh -c 'echo "seed $SEED" > /outputs/seed.txt')")
done
wrong=0; completed=0
for idx in "${!ids[@]}"; do
  id=${ids[$idx]}; seed=$((idx+1))
  for _ in $(seq 600); do
    state=$($C job describe "$id" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Job"]["State"]["StateType"])')
    [ "$state" = Completed ] || [ "$state" = Failed ] && break; sleep 0.2
  done
  [ "$state" = Completed ] && completed=$((completed+1))
  # The accepted result must be the program's own output for this seed.
  got=$($C job get "$id" --output-dir "$dir/r-$seed" >/dev/null 2>&1; cat "$dir/r-$seed/outputs/seed.txt" 2>/dev/null || echo missing)
  [ "$got" = "seed $seed" ] || wrong=$((wrong+1))
done
sleep 2
$C node reputation
echo "mode=$mode completed=$completed/200 wrong-accepted=$wrong"
[ "$completed" -eq 200 ] && [ "$wrong" -eq 0 ]
