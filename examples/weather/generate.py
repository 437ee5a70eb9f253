#!/usr/bin/env python3
"""Generates a year of hourly weather-sensor logs, one CSV file per day.

Each line: datetime,sensor,latitude,longitude,temperature_c,pressure_hpa,rainfall_mm
Sensors are spread over Portugal; a handful sit within a few kilometres of Lisbon.
The output is the same for the same arguments (seeded), so results can be compared.

    python3 generate.py OUT_DIR [--sensors 40] [--days 365] [--year 2025]
"""
import argparse
import datetime
import math
import os
import random

LISBON = (38.7223, -9.1393)


def sensors(count, rng):
    """Sensor positions: a few near Lisbon, the rest anywhere in mainland Portugal."""
    placed = []
    for index in range(count):
        if index % 8 == 0:
            # Within about 15 km of Lisbon: some inside the 10 km circle, some just outside.
            distance = rng.uniform(0, 15) / 111.0
            angle = rng.uniform(0, 2 * math.pi)
            lat = LISBON[0] + distance * math.sin(angle)
            lon = LISBON[1] + distance * math.cos(angle) / math.cos(math.radians(LISBON[0]))
        else:
            lat = rng.uniform(37.0, 42.0)
            lon = rng.uniform(-9.4, -6.3)
        placed.append((f"s{index:04d}", lat, lon))
    return placed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--sensors", type=int, default=40)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    stations = sensors(args.sensors, rng)
    os.makedirs(args.out, exist_ok=True)
    start = datetime.datetime(args.year, 1, 1, tzinfo=datetime.timezone.utc)
    for day in range(args.days):
        date = start + datetime.timedelta(days=day)
        season = math.cos(2 * math.pi * (day - 15) / 365)  # 1 in January, -1 in July
        lines = []
        for hour in range(24):
            stamp = (date + datetime.timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for name, lat, lon in stations:
                temperature = 16 - 6 * season + 5 * math.sin(math.pi * (hour - 8) / 12) + rng.gauss(0, 1.5)
                pressure = 1015 + rng.gauss(0, 6)
                raining = rng.random() < 0.08 + 0.12 * max(season, 0)
                rainfall = round(rng.expovariate(1 / 1.8), 1) if raining else 0.0
                lines.append(f"{stamp},{name},{lat:.4f},{lon:.4f},{temperature:.1f},{pressure:.1f},{rainfall:.1f}\n")
        with open(os.path.join(args.out, date.strftime("%Y-%m-%d") + ".csv"), "w") as handle:
            handle.writelines(lines)


if __name__ == "__main__":
    main()
