#!/usr/bin/env bash
# The nightly thumbnails of the founding design's first scenario: each "night" a day's photos
# are added to a named dataset, and a schedule triggered by the dataset (not the clock: the job
# starts when the data is there, however late the upload) turns just that day's new images into
# grayscale thumbnails and publishes one result CID for the night.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/nightly/run.sh          # 2 nights of 6 images of 128x128
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common.sh"
nights=${NIGHTS:-2}
dataset=photos-$$
schedule=nightly-thumbnails-$$

echo "1. a schedule that runs when dataset $dataset grows (2 s debounce), reading only the new shards"
script=$(cat "$here/../images/thumbnail.py")
cat > "$work/schedule.json" <<JSON
{"Name": "$schedule",
 "Triggers": [{"Type": "Dataset", "Dataset": "$dataset", "Inputs": "Delta", "Debounce": "2s", "Target": "/inputs"}],
 "JobTemplate": {"Type": "batch",
   "Tasks": [{"Name": "thumbnails",
     "Engine": {"Type": "process", "Params": {"Command": "python3", "Arguments": ["-c", $(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' <<<"$script")]}},
     "ResultPaths": [{"Name": "thumbnails", "Path": "/outputs"}]}]}}
JSON
$COD schedule create -f "$work/schedule.json"
trap '$COD schedule delete "$schedule" >/dev/null 2>&1 || true' EXIT

for night in $(seq 1 "$nights"); do
    echo "2.$night night $night: adding ${COUNT:-6} new photos to $dataset"
    python3 "$here/../images/generate.py" "$work/night-$night" --count "${COUNT:-6}" --size "${SIZE:-128}" --seed "$night"
    for file in "$work/night-$night"/*.ppm; do mv "$file" "$work/night-$night/night-$night-$(basename "$file")"; done
    $COD data add "$work/night-$night" --cid-version 1 --dataset "$dataset" --shards "${SHARDS:-2}"

    echo "3.$night waiting for the schedule's job for version $night of $dataset"
    job=""
    for _ in $(seq 1 300); do
        job=$($COD schedule runs "$schedule" --output json | python3 -c '
import json, sys
runs = [r for r in json.load(sys.stdin)["Items"] if r["Key"] == sys.argv[1]]
print(runs[0]["JobID"] if runs else "")' "dataset:$dataset:v$night")
        [ -n "$job" ] && break
        sleep 0.2
    done
    [ -n "$job" ] || { echo "no job started for night $night" >&2; exit 1; }
    for _ in $(seq 1 600); do
        state=$($COD job describe "$job" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Job"]["State"]["StateType"])')
        case "$state" in Completed) break ;; Failed|Stopped) echo "job $job ended $state" >&2; $COD job describe "$job" >&2; exit 1 ;; esac
        sleep 0.2
    done
    $COD job get "$job" --output-dir "$work/result-$night"
    echo "night $night: $(ls "$work/result-$night/thumbnails" | wc -l) thumbnails, $(ls "$work/result-$night/thumbnails" | grep -vc "^night-$night-" || true) from other nights"
done
$COD schedule describe "$schedule"
