#!/usr/bin/env bash
# Downscales a batch of colour images into grayscale thumbnails where the images live: the
# images are a dataset sharded across compute nodes, each partition runs on a node holding
# its shard, and the partitions' thumbnails merge into one result CID (no reduce task).
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/images/run.sh            # 24 images of 512x512, 3 shards
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common.sh"

echo "1. generating ${COUNT:-24} images in $work/images"
python3 "$here/generate.py" "$work/images" --count "${COUNT:-24}" --size "${SIZE:-512}"

add_dataset "$work/images" images-$$

echo "3. one partition per shard, each on a node holding its shard"
script=$(cat "$here/thumbnail.py")
cat > "$work/job.json" <<JSON
{"Name": "thumbnails-$$", "Type": "batch",
 "Tasks": [{"Name": "thumbnails",
   "Engine": {"Type": "process", "Params": {"Command": "python3", "Arguments": ["-c", $(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' <<<"$script")]}},
   "InputSources": [{"Target": "/inputs", "Source": {"Type": "ipfs", "Params": {"CID": "$cid", "Partition": {"By": "shard"}}}}],
   "ResultPaths": [{"Name": "thumbnails", "Path": "/outputs"}]}]}
JSON
id=$($COD job run "$work/job.json" --id-only)
$COD job describe "$id" | sed -n '/^Result/p;/^Executions/,/^History/p'

echo "4. one result CID with every thumbnail"
$COD job get "$id" --output-dir "$work/result"
ls "$work/result/thumbnails" | head -5
echo "$(ls "$work/result/thumbnails" | wc -l) thumbnails"
