#!/usr/bin/env python3
"""Generates a CSV dataset split over several files, each with a header:
id,temperature,humidity,wind_speed,pm25

    python3 generate.py OUT_DIR [--files 12] [--rows 20000]
"""
import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rows", type=int, default=20000, help="rows per file")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    row = 0
    for index in range(args.files):
        with open(os.path.join(args.out, f"part-{index:04d}.csv"), "w") as handle:
            handle.write("id,temperature,humidity,wind_speed,pm25\n")
            for _ in range(args.rows):
                handle.write(f"{row},{rng.gauss(17, 6):.2f},{rng.uniform(20, 100):.1f},{rng.expovariate(1 / 12):.2f},{rng.lognormvariate(2.3, 0.6):.2f}\n")
                row += 1


if __name__ == "__main__":
    main()
