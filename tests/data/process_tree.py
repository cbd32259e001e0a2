"""A process tree that tries to outlive whatever started it.

``python process_tree.py PIDFILE DEPTH``: each level ignores SIGTERM, starts the next level
in a session of its own (out of its parent's process group), appends its pid to PIDFILE and
sleeps. The tests kill something above it and check in /proc that every level is gone.
"""

import os
import signal
import subprocess
import sys
import time

pidfile, depth = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if depth > 1:
    subprocess.Popen([sys.executable, __file__, pidfile, str(depth - 1)], start_new_session=True)
with open(pidfile, "a") as f:
    f.write(f"{os.getpid()}\n")
time.sleep(600)
