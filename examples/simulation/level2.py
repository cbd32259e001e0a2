#!/usr/bin/env python3
"""Level-2 filtering: keep well-lit events from each detector configuration, merged."""

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
    p.add_argument("--min-hits", type=float, required=True)
    a = p.parse_args()
    kept = total = 0
    with open(a.output, "w") as out:
        for path in a.input:
            with open(path) as f:
                for line in f:
                    total += 1
                    event = json.loads(line)
                    if event["hits"] >= a.min_hits:
                        out.write(line)
                        kept += 1
    print(f"level2 kept {kept} of {total} events")
    record(level2_events=kept, level2_input_events=total)


if __name__ == "__main__":
    main()
