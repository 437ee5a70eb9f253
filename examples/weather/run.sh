#!/usr/bin/env bash
# Rainfall within 10 km of Lisbon over a year of sensor logs sharded across compute nodes.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/weather/run.sh            # 40 sensors x 365 days, 3 shards
#   SHARDS=6 REPLICATION=2 examples/weather/run.sh
set -euo pipefail
COD=${COD:-cod}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"

echo "1. generating logs in $work/logs"
python3 "$here/generate.py" "$work/logs" --sensors "${SENSORS:-40}" --days "${DAYS:-365}"

echo "2. adding them as a dataset of ${SHARDS:-3} shards"
$COD data add "$work/logs" --cid-version 1 --shards "${SHARDS:-3}" --replication "${REPLICATION:-1}" --name weather-logs
cid=$($COD data datasets --output json | python3 -c 'import json,sys; print([d["Dataset"]["CID"] for d in json.load(sys.stdin) if d["Dataset"]["Name"] == "weather-logs"][0])')

echo "3. filtering: one map partition per shard, where the shard lives, then one reduce"
sed "s/DATASET_CID/$cid/; s/^Name: lisbon-rain$/Name: lisbon-rain-$$/" "$here/job.yaml" > "$work/job.yaml"
id=$($COD job run "$work/job.yaml" --id-only)
$COD job describe "$id" | sed -n '/^Executions/,/^History/p'

echo "4. the result"
$COD job get "$id" --output-dir "$work/result"
echo "answer: $(cat "$work/result/stdout")"
echo "first matches:"
head -3 "$work/result/outputs/lisbon-rain.csv"
