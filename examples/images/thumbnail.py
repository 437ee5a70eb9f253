"""Turns every PPM image under /inputs into a grayscale PGM thumbnail in /outputs, shrunk by
FACTOR (default 4) by averaging each FACTOR x FACTOR block. Pure Python: no packages needed."""
import os
import sys

FACTOR = int(os.environ.get("FACTOR", "4"))


def read_ppm(path):
    with open(path, "rb") as handle:
        data = handle.read()
    fields, position = [], 0
    while len(fields) < 4:
        while data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            position = data.index(b"\n", position) + 1
            continue
        end = position
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError(f"{path}: not an 8-bit binary PPM")
    return int(fields[1]), int(fields[2]), data[position + 1:]


def thumbnail(width, height, pixels):
    gray = bytes((77 * pixels[i] + 150 * pixels[i + 1] + 29 * pixels[i + 2]) >> 8 for i in range(0, width * height * 3, 3))
    small_w, small_h = width // FACTOR, height // FACTOR
    out = bytearray()
    for y in range(small_h):
        rows = [gray[(y * FACTOR + dy) * width:(y * FACTOR + dy + 1) * width] for dy in range(FACTOR)]
        for x in range(small_w):
            start = x * FACTOR
            out.append(sum(sum(row[start:start + FACTOR]) for row in rows) // (FACTOR * FACTOR))
    return small_w, small_h, bytes(out)


count = 0
for folder, _, names in os.walk("/inputs"):
    for name in sorted(names):
        if not name.endswith(".ppm"):
            continue
        width, height, pixels = read_ppm(os.path.join(folder, name))
        w, h, small = thumbnail(width, height, pixels)
        with open(os.path.join("/outputs", name[:-4] + ".pgm"), "wb") as handle:
            handle.write(b"P5\n%d %d\n255\n" % (w, h) + small)
        count += 1
        print(f"{name}: {width}x{height} -> {w}x{h} grayscale")
print(f"partition {os.environ.get('BACALHAU_PARTITION_INDEX')}: {count} thumbnails", file=sys.stderr)
