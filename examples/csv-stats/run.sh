#!/usr/bin/env bash
# Per-column mean, min, max and standard deviation across a sharded CSV dataset: a map over
# partitions balanced by size (each where its files live), then a reduce that combines them.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/csv-stats/run.sh           # 12 files of 20,000 rows, 3 shards, 6 partitions
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common.sh"

echo "1. generating ${FILES:-12} CSV files in $work/csv"
python3 "$here/generate.py" "$work/csv" --files "${FILES:-12}" --rows "${ROWS:-20000}"

add_dataset "$work/csv" csv-$$

echo "3. map over ${PARTITIONS:-6} partitions (by size), then reduce"
sed "s/DATASET_CID/$cid/; s/PARTITIONS/${PARTITIONS:-6}/; s/^Name: csv-stats$/Name: csv-stats-$$/" "$here/job.yaml" > "$work/job.yaml"
id=$($COD job run "$work/job.yaml" --id-only)
$COD job describe "$id" | sed -n '/^Result/p;/^Executions/,/^History/p'

echo "4. the statistics"
$COD job get "$id" --output-dir "$work/result"
cat "$work/result/outputs/stats.csv"
