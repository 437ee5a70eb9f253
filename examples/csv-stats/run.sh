#!/usr/bin/env bash
# Per-column mean, min, max and standard deviation across a sharded CSV dataset: a map over
# partitions balanced by size (each where its files live), then a reduce that combines them.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/csv-stats/run.sh           # 12 files of 20,000 rows, 3 shards, 6 partitions
set -euo pipefail
COD=${COD:-cod}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"

echo "1. generating ${FILES:-12} CSV files in $work/csv"
python3 "$here/generate.py" "$work/csv" --files "${FILES:-12}" --rows "${ROWS:-20000}"

echo "2. adding them as a dataset of ${SHARDS:-3} shards"
$COD data add "$work/csv" --cid-version 1 --shards "${SHARDS:-3}" --replication "${REPLICATION:-1}" --name csv-$$
cid=$($COD data datasets --output json | python3 -c "import json,sys; print([d['Dataset']['CID'] for d in json.load(sys.stdin) if d['Dataset']['Name'] == 'csv-$$'][0])")

echo "3. map over ${PARTITIONS:-6} partitions (by size), then reduce"
sed "s/DATASET_CID/$cid/; s/PARTITIONS/${PARTITIONS:-6}/; s/^Name: csv-stats$/Name: csv-stats-$$/" "$here/job.yaml" > "$work/job.yaml"
id=$($COD job run "$work/job.yaml" --id-only)
$COD job describe "$id" | sed -n '/^Result/p;/^Executions/,/^History/p'

echo "4. the statistics"
$COD job get "$id" --output-dir "$work/result"
cat "$work/result/outputs/stats.csv"
