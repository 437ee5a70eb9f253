#!/usr/bin/env python3
"""Generates colour test images (binary PPM, P6) with gradients and circles.

    python3 generate.py OUT_DIR [--count 24] [--size 512]
"""
import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    size = args.size
    for index in range(args.count):
        cx, cy, radius = rng.randrange(size), rng.randrange(size), rng.randrange(size // 8, size // 2)
        tint = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        pixels = bytearray()
        for y in range(size):
            for x in range(size):
                inside = (x - cx) ** 2 + (y - cy) ** 2 < radius * radius
                if inside:
                    pixels += bytes(tint)
                else:
                    pixels += bytes((x * 255 // size, y * 255 // size, (x + y) * 255 // (2 * size)))
        with open(os.path.join(args.out, f"image-{index:03d}.ppm"), "wb") as handle:
            handle.write(b"P6\n%d %d\n255\n" % (size, size))
            handle.write(pixels)


if __name__ == "__main__":
    main()
