"""The numerics threads run below the event loop's priority (Linux), so painting never waits behind a fit."""
from __future__ import annotations

import os
import sys

import pytest

from workstation.workers import NUMERICS_NICE, numerics_executor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_numerics_threads_are_nicer_than_the_loop_thread():
    import threading

    def nice_of_this_thread() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = nice_of_this_thread()
    pool = numerics_executor(max_workers=1)
    try:
        worker_nice = pool.submit(nice_of_this_thread).result(timeout=5)
    finally:
        pool.shutdown(wait=True)
    assert worker_nice == min(loop_nice + NUMERICS_NICE, 19)
    assert nice_of_this_thread() == loop_nice                      # the caller's own priority is untouched
