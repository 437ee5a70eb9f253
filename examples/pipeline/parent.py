"""A parent job that splits its work into child jobs and merges their results: it cuts
/inputs/text.txt into PARTS pieces, starts one child per piece through its spawn folder (each
counts its piece's words), waits for them, reads each child's result from the folder, and writes
the merged counts to /outputs. Needs no network and no credentials: its node submits the
children and copies their results in. Pure Python."""
import base64
import collections
import json
import os
import pathlib
import time

# What each child runs: count the words of /inputs/part.txt into /outputs/counts.json.
CHILD = """
import collections, json, re
words = re.findall(r"[a-z']+", open("/inputs/part.txt").read().lower())
json.dump(collections.Counter(words), open("/outputs/counts.json", "w"))
print(len(words), "words")
"""

spawn = pathlib.Path(os.environ["COD_SPAWN_DIR"])
parts = int(os.environ.get("PARTS", "4"))
lines = open("/inputs/text.txt").read().splitlines(keepends=True)
names = []
for index in range(parts):
    piece = "".join(lines[index::parts])
    name = f"part-{index}"
    spec = {
        "Name": name, "Type": "batch",
        "Tasks": [{
            "Name": "count",
            "Engine": {"Type": "process", "Params": {"Command": "python3", "Arguments": ["-c", CHILD]}},
            "InputSources": [{"Target": "/inputs/part.txt", "Source": {"Type": "inline", "Params": {
                "URL": "data:text/plain;base64," + base64.b64encode(piece.encode()).decode()}}}],
            "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
        }],
    }
    # Write, then rename: the node never reads half a spec.
    (spawn / f"{name}.json.tmp").write_text(json.dumps(spec))
    (spawn / f"{name}.json.tmp").rename(spawn / f"{name}.json")
    names.append(name)
print(f"started {parts} children")

# The node keeps <name>.status up to date; once a child completed, its result is <name>.result.
deadline = time.time() + 600
pending = set(names)
while pending and time.time() < deadline:
    for name in sorted(pending):
        try:
            status = json.loads((spawn / f"{name}.status").read_text())
        except (OSError, ValueError):
            continue
        if status["State"] == "Completed" and "ResultPath" in status:
            pending.discard(name)
        elif status["State"] in ("Failed", "Stopped", "Refused"):
            raise SystemExit(f"{name} ended {status['State']}: {status['Message']}")
    time.sleep(0.2)
if pending:
    raise SystemExit(f"children still running after 10 minutes: {sorted(pending)}")

total = collections.Counter()
for name in names:
    total.update(json.loads((spawn / f"{name}.result/outputs/counts.json").read_text()))
os.makedirs("/outputs", exist_ok=True)
with open("/outputs/counts.json", "w") as out:
    json.dump(dict(sorted(total.items())), out, sort_keys=True)
print(f"{sum(total.values())} words, {len(total)} distinct; most common:")
for word, count in total.most_common(5):
    print(f"  {word} {count}")
