"""A test module: writes an output, can fail N times first, can sleep, records statistics.

work.py --out FILE [--fail-times N --marker FILE] [--sleep S] [--value V]
"""

import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--fail-times", type=int, default=0)
p.add_argument("--marker", default="")
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--value", type=float, default=1.0)
p.add_argument("--input", default="")
a = p.parse_args()
if a.fail_times:
    count = 0
    if os.path.exists(a.marker):
        with open(a.marker) as f:
            count = int(f.read())
    with open(a.marker, "w") as f:
        f.write(str(count + 1))
    if count < a.fail_times:
        raise SystemExit(f"failing on purpose ({count + 1} of {a.fail_times})")
if a.input:
    with open(a.input) as f:
        f.read()
time.sleep(a.sleep)
with open(a.out, "w") as f:
    f.write(f"value {a.value} pid {os.getpid()}\n")
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
with open("frazil_stats.json", "w") as f:
    json.dump({"value": a.value, "gpus_seen": len(gpus.split(",")) if gpus else 0}, f)
print("done", a.out)
