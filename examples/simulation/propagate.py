#!/usr/bin/env python3
"""Propagate photons from each event to the optical modules (the GPU step).

Stands in for clsim/ppc: photo-electrons per event follow the energy, the ice model's
absorption and the DOM efficiency. Reports which GPU it was given.
"""

import argparse
import json
import os
import random

ICE_ABSORPTION = {"spice_3.2.1": 1.00, "spice_bfr-v2": 0.93, "spice_ftp-v1": 0.97}


def record(**stats: float) -> None:
    """Leave statistics for the pilot (frazil_stats.json: name -> number), added up per job."""
    with open("frazil_stats.json", "w") as f:
        json.dump(stats, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--input", action="append", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--ice-model", required=True, choices=sorted(ICE_ABSORPTION))
    p.add_argument("--efficiency", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    a = p.parse_args()
    rng = random.Random(a.seed)
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "none")
    scale = ICE_ABSORPTION[a.ice_model] * a.efficiency
    n = 0
    with open(a.output, "w") as out:
        for path in a.input:
            with open(path) as f:
                for line in f:
                    event = json.loads(line)
                    mean = 0.05 * event["energy"] ** 0.8 * scale
                    event["npe"] = max(0.0, rng.gauss(mean, mean**0.5 + 1e-9))
                    event["id"] = n
                    n += 1
                    out.write(json.dumps(event) + "\n")
    print(f"propagated photons for {n} events (GPUs: {gpus}) into {a.output}")
    record(propagated_events=n, gpus_seen=0 if gpus in ("", "none") else len(gpus.split(",")))


if __name__ == "__main__":
    main()
