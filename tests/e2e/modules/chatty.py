"""A test module that prints a line, waits until it may go on, and prints another.

chatty.py GO_FILE: prints "first line", waits (up to 120 s) for GO_FILE to exist, then
prints "second line" and ends.
"""

import os
import sys
import time

print("first line", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
print("second line", flush=True)
