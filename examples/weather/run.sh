#!/usr/bin/env bash
# Rainfall within 10 km of Lisbon over a year of sensor logs sharded across compute nodes.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/weather/run.sh            # 40 sensors x 365 days, 3 shards
#   SHARDS=6 REPLICATION=2 examples/weather/run.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common.sh"

echo "1. generating logs in $work/logs"
python3 "$here/generate.py" "$work/logs" --sensors "${SENSORS:-40}" --days "${DAYS:-365}"

add_dataset "$work/logs" weather-logs

echo "3. estimating, then filtering: one map partition per shard, where the shard lives, then one reduce"
sed "s/DATASET_CID/$cid/; s/^Name: lisbon-rain$/Name: lisbon-rain-$$/" "$here/job.yaml" > "$work/job.yaml"
$COD job estimate "$work/job.yaml"
id=$($COD job run "$work/job.yaml" --id-only)
$COD job describe "$id" | sed -n '/^Executions/,/^History/p'
$COD job cost "$id"

echo "4. the result"
$COD job get "$id" --output-dir "$work/result"
echo "answer: $(cat "$work/result/stdout")"
echo "first matches:"
head -3 "$work/result/outputs/lisbon-rain.csv"
