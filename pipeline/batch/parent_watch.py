"""A local worker ends when its driver is gone, however the driver ended (SIGKILL included).

A killed driver cannot stop its workers, and they run in their own session (so that a Ctrl-C reaches only the
driver): without this they would be re-parented and keep running, holding memory, a GPU context and their
half-written segment files, for a batch nobody will join. Two mechanisms, the first immediate:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (prctl(2)): the kernel kills the worker when the thread that
  started it exits. The workers are started from the driver's main thread, which lives as long as the driver.
- Every POSIX system: a daemon thread that notices ``os.getppid()`` change (a process whose parent died is
  re-parented to init or a sub-reaper) and ends the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5


def end_with_parent(parent: int, poll_s: float = POLL_S) -> None:
    """Make this process end (exit status 1, no clean-up: the driver's next run removes what it leaves) as
    soon as process ``parent`` is no longer its parent. Call it first thing in a worker process."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the driver died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="stylize-batch-parent-watch", daemon=True).start()
