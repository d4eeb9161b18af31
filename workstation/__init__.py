"""Heston Workstation: SPX/XSP options trading workstation built around a Heston model of the surface."""

import time

__version__ = "0.1.0"

LAUNCHED = time.monotonic()   # the process's start, near enough (this package is the first thing main.py imports)
