"""The Lisbon filter of `cod bench dataset` over the same files with Ray: one task per file
running the same `grep -E` (num_cpus=1 each, so as many at once as Ray has CPUs), their outputs
joined and piped into the same `awk` in the driver. Prints one line per run and a last line
`ray best: SECONDS -> ANSWER` that the bench reads. Ray's start is not timed, and one warm-up
run fills the page cache and Ray's worker pool first, as the floor's unmeasured run does.

    python ray_lisbon.py LOGS_FOLDER BOX_REGEX AWK_PROGRAM [--cpus N] [--runs 3]
"""
import argparse
import os
import subprocess
import time

import ray


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logs")
    parser.add_argument("box")
    parser.add_argument("awk")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    files = sorted(os.path.join(args.logs, name) for name in os.listdir(args.logs))

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def grep(path, box):
        found = subprocess.run(["grep", "-hE", box, path], capture_output=True)
        if found.returncode not in (0, 1):
            raise RuntimeError(found.stderr.decode())
        return found.stdout

    def once():
        parts = ray.get([grep.remote(path, args.box) for path in files])
        reduced = subprocess.run(["sh", "-c", args.awk], input=b"".join(parts), capture_output=True, check=True)
        return reduced.stdout.decode().strip()

    once()
    times, answer = [], ""
    for run in range(args.runs):
        started = time.perf_counter()
        answer = once()
        times.append(time.perf_counter() - started)
        print(f"ray run {run + 1}: {times[-1]:.2f} s -> {answer}", flush=True)
    print(f"ray best: {min(times):.3f} -> {answer}", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
