"""The fault tests' module: writes an output that differs per attempt, maybe big, maybe late.

output.py --out FILE [--input FILE] [--value V] [--sleep S] [--size BYTES]

The output holds the value and the writer's pid (so that two attempts never write the same
bytes), padded to ``--size`` bytes; ``--input`` must exist and be readable.
"""

import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--input", default="")
p.add_argument("--value", type=float, default=1.0)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--size", type=int, default=0)
a = p.parse_args()
if a.input:
    with open(a.input) as f:
        f.read()
time.sleep(a.sleep)
head = f"value {a.value} pid {os.getpid()} time {time.time()}\n"
with open(a.out, "w") as f:
    f.write(head)
    for _ in range(max(0, a.size - len(head)) // (1 << 16)):
        f.write("x" * (1 << 16))
    f.write("x" * (max(0, a.size - len(head)) % (1 << 16)))
with open("frazil_stats.json", "w") as f:
    json.dump({"value": a.value}, f)
print("done", a.out)
