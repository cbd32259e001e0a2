#!/usr/bin/env python3
"""Generate primary events: air showers (CORSIKA) or neutrinos (NuGen).

A small stand-in for the real generators with the same shape of inputs and outputs: a
power-law energy spectrum, isotropic directions, one JSON object per event and line.
"""

import argparse
import json
import math
import random


def power_law(rng: random.Random, emin: float, emax: float, gamma: float) -> float:
    """Draw an energy from E^gamma between emin and emax (inverse transform)."""
    u = rng.random()
    if abs(gamma + 1.0) < 1e-9:
        return emin * (emax / emin) ** u
    g = gamma + 1.0
    return (emin**g + u * (emax**g - emin**g)) ** (1.0 / g)


def record(**stats: float) -> None:
    """Leave statistics for the pilot (frazil_stats.json: name -> number), added up per job."""
    with open("frazil_stats.json", "w") as f:
        json.dump(stats, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--type", choices=["corsika", "nugen"], required=True)
    p.add_argument("--nevents", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--emin", type=float, required=True)
    p.add_argument("--emax", type=float, required=True)
    p.add_argument("--gamma", type=float, required=True)
    p.add_argument("--flavor", default="")
    p.add_argument("--output", required=True)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(a.output, "w") as out:
        for i in range(a.nevents):
            event = {
                "id": i,
                "type": a.type,
                "flavor": a.flavor or ("mu" if a.type == "corsika" else "numu"),
                "energy": power_law(rng, a.emin, a.emax, a.gamma),
                "zenith": math.acos(rng.uniform(-1.0, 1.0)),
                "azimuth": rng.uniform(0.0, 2.0 * math.pi),
            }
            out.write(json.dumps(event) + "\n")
    print(f"generated {a.nevents} {a.type} events into {a.output}")
    record(**{f"{a.type}_events": a.nevents})


if __name__ == "__main__":
    main()
