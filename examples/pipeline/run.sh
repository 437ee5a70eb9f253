#!/usr/bin/env bash
# A parent job that splits its work into child jobs and merges their results (two-level
# orchestration): it starts one child per piece of a text through its spawn folder, waits for
# them (lending its CPU meanwhile, so it never deadlocks on a small cluster), and merges the
# children's word counts into one result CID. The merged counts are checked against the same
# count on this machine.
# Needs a running cluster (cod devstack in another terminal) and python3.
#   examples/pipeline/run.sh          # 4 children over 5,000 lines
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common.sh"

echo "1. writing ${LINES:-5000} lines of text to $work/text.txt"
python3 - "$work/text.txt" "${LINES:-5000}" <<'PY'
import random, sys
random.seed(7)
words = "the a of rain data node job shard cluster map reduce lisbon image cloud result".split()
with open(sys.argv[1], "w") as out:
    for _ in range(int(sys.argv[2])):
        out.write(" ".join(random.choice(words) for _ in range(random.randint(3, 12))) + "\n")
PY
cid=$($COD data add "$work/text.txt" --cid-version 1 --quiet)

echo "2. a parent job that may start ${PARTS:-4} children, one level deep"
cat > "$work/job.json" <<JSON
{"Name": "word-count-$$", "Type": "batch",
 "Children": {"MaxJobs": ${PARTS:-4}, "MaxDepth": 1},
 "Tasks": [{"Name": "split-and-merge",
   "Engine": {"Type": "process", "Params": {"Command": "python3", "Arguments": ["-c", $(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < "$here/parent.py")]}},
   "Env": {"PARTS": "${PARTS:-4}"},
   "InputSources": [{"Target": "/inputs/text.txt", "Source": {"Type": "ipfs", "Params": {"CID": "$cid"}}}],
   "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}]}]}
JSON
id=$($COD job run "$work/job.json" --id-only)

echo "3. the tree it made"
$COD job tree "$id"

echo "4. the merged result"
$COD job get "$id" --output-dir "$work/result"
cat "$work/result/stdout"
python3 - "$work/text.txt" "$work/result/outputs/counts.json" <<'PY'
import collections, json, re, sys
expected = collections.Counter(re.findall(r"[a-z']+", open(sys.argv[1]).read().lower()))
merged = json.load(open(sys.argv[2]))
print("merged counts match a count on this machine:", merged == dict(expected))
sys.exit(0 if merged == dict(expected) else 1)
PY
