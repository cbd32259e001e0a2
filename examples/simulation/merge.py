#!/usr/bin/env python3
"""Concatenate event files, renumbering the events."""

import argparse
import json


def record(**stats: float) -> None:
    """Leave statistics for the pilot (frazil_stats.json: name -> number), added up per job."""
    with open("frazil_stats.json", "w") as f:
        json.dump(stats, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--input", action="append", required=True)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    n = 0
    with open(a.output, "w") as out:
        for path in a.input:
            with open(path) as f:
                for line in f:
                    event = json.loads(line)
                    event["id"] = n
                    n += 1
                    out.write(json.dumps(event) + "\n")
    print(f"merged {n} events from {len(a.input)} files into {a.output}")
    record(merged_events=n)


if __name__ == "__main__":
    main()
