#!/usr/bin/env python3
"""Simulate the detector: PMT response, noise, and the trigger, for one detector geometry."""

import argparse
import json
import random


def record(**stats: float) -> None:
    """Leave statistics for the pilot (frazil_stats.json: name -> number), added up per job."""
    with open("frazil_stats.json", "w") as f:
        json.dump(stats, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--input", required=True)
    p.add_argument("--gcd", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--noise-rate", type=float, required=True, help="noise hits per event")
    p.add_argument("--seed", type=int, required=True)
    a = p.parse_args()
    with open(a.gcd) as f:
        gcd = json.load(f)
    rng = random.Random(a.seed)
    threshold = gcd["trigger"]["min_npe"]
    kept = total = 0
    with open(a.input) as f, open(a.output, "w") as out:
        for line in f:
            event = json.loads(line)
            total += 1
            hits = event["npe"] * gcd["doms"] / 5160 + rng.expovariate(1 / a.noise_rate)
            if hits >= threshold:
                event.update(detector=gcd["season"], hits=hits)
                out.write(json.dumps(event) + "\n")
                kept += 1
    print(f"{gcd['season']}: {kept} of {total} events triggered")
    record(triggered_events=kept, detector_input_events=total)


if __name__ == "__main__":
    main()
