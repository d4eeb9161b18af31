"""The engine's numerics threads: a thread pool whose threads run below the event loop's scheduling priority.

On a busy machine (two cores shared by the fit, the window and the X server) the scheduler then hands a core to
the event loop first, so painting never waits behind a calibration; the numerics take whatever is left, which is
nearly all of it. Linux sets a nice value per thread; elsewhere the threads keep the process's priority.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

NUMERICS_NICE = 10


def lower_thread_priority(nice: int = NUMERICS_NICE) -> bool:
    """Make the calling thread `nice` steps less urgent than its process (Linux); True when it took effect."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
    except (AttributeError, OSError):   # not Linux: per-thread priorities are not available this way
        return False
    return True


def numerics_executor(max_workers: int = 2, prefix: str = "numerics") -> ThreadPoolExecutor:
    """A thread pool for calibrations, surfaces and risk, at a lower priority than the event loop."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=prefix, initializer=lower_thread_priority)
