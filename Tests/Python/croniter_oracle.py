"""Next-fire times from croniter for random cron expressions, zones and start times.

Usage: croniter_oracle.py SEED COUNT. Prints one JSON object per line:
{"cron": ..., "zone": ..., "start": unix seconds, "next": [unix seconds, ...]}.
Expressions croniter refuses are left out. A quarter of the cases start in a week whose
clocks change in Europe/Lisbon or America/New_York.

Ranges are never a single value (`7-7`, `23-23/9`): croniter reads those as `*` and `*/9`,
where Vixie cron and Cod read 7 and 23.
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import croniter

ZONES = ["UTC", "Europe/Lisbon", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
         "Asia/Tokyo", "America/Sao_Paulo", "Pacific/Chatham", "Europe/Berlin"]
DST_WEEKS = [("Europe/Lisbon", datetime(2026, 3, 27)), ("Europe/Lisbon", datetime(2026, 10, 23)),
             ("America/New_York", datetime(2026, 3, 6)), ("America/New_York", datetime(2026, 10, 30)),
             ("Europe/Lisbon", datetime(2027, 3, 26)), ("America/New_York", datetime(2027, 11, 5))]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def field(rng, low, high, names=None, star_weight=3):
    kind = rng.randrange(7 + star_weight)
    if kind < star_weight:
        return "*"
    kind -= star_weight
    if kind == 0:
        return str(rng.randint(low, high))
    if kind == 1:
        a = rng.randint(low, high - 1)
        b = rng.randint(a + 1, high)
        return f"{a}-{b}"
    if kind == 2:
        return f"*/{rng.randint(1, max(1, (high - low) // 2))}"
    if kind == 3:
        a = rng.randint(low, high - 1)
        b = rng.randint(a + 1, high)
        return f"{a}-{b}/{rng.randint(1, max(1, high - low))}"
    if kind == 4:
        values = sorted(set(rng.randint(low, high) for _ in range(rng.randint(2, 4))))
        return ",".join(map(str, values))
    if kind == 5 and names:
        return names[rng.randint(low, high) - low] if names is MONTHS or high <= 6 else str(rng.randint(low, high))
    return str(rng.randint(low, high))


def expression(rng, dense):
    minute = field(rng, 0, 59, star_weight=1 if dense else 0)
    hour = field(rng, 0, 23, star_weight=3 if dense else 1)
    day = field(rng, 1, 28 if rng.random() < 0.8 else 31, star_weight=6)
    month = field(rng, 1, 12, MONTHS, star_weight=6)
    weekday = field(rng, 0, 6, DAYS, star_weight=6)
    return f"{minute} {hour} {day} {month} {weekday}"


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    made = 0
    while made < count:
        if rng.random() < 0.25:
            zone, week = rng.choice(DST_WEEKS)
            start = week.replace(tzinfo=ZoneInfo(zone)) + timedelta(seconds=rng.randint(0, 5 * 86400))
            cron = expression(rng, dense=True)
        else:
            zone = rng.choice(ZONES)
            start = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randint(0, 10 * 365 * 86400))
            start = start.astimezone(ZoneInfo(zone))
            cron = expression(rng, dense=rng.random() < 0.5)
        try:
            it = croniter(cron, start)
            times = [int(it.get_next(float)) for _ in range(8)]
        except Exception:
            continue
        print(json.dumps({"cron": cron, "zone": zone, "start": int(start.timestamp()), "next": times}))
        made += 1


if __name__ == "__main__":
    main()
