"""The engine's numerics threads: a thread pool whose threads run below the event loop's scheduling priority.

On a busy machine (two cores shared by the fit, the window and the X server) the scheduler then hands a core to
the event loop first, so painting never waits behind a calibration; the numerics take whatever is left, which is
nearly all of it. Linux sets a nice value per thread; elsewhere the threads keep the process's priority.

Four steps below, not ten: the step is also paid against every other program. Beside four busy loops on the two
cores a thread ten steps below got 5 % of a core (CFS weight 110 against 1,024 each): a one-minute numba warm-up
ran 25 minutes, fits fell behind the market, and a numerics thread descheduled while holding the GIL kept the
event loop waiting for it. Four steps below (weight 423) it gets about a fifth of a core there, while the event
loop still wins every contest with it on a quiet machine.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

NUMERICS_NICE = 4


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
