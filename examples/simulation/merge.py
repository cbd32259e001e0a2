#!/usr/bin/env python3
"""Concatenate event files, renumbering the events."""

import argparse
import json


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


if __name__ == "__main__":
    main()
