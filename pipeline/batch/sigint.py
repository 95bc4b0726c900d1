"""Ctrl-C around the few steps of the local executor that must not be cut in two: starting and stopping workers.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group: the driver, and a worker process that is
still starting (it leaves the group, ``os.setsid``, only in its initializer, after the interpreter and the
imports). Python turns SIGINT into ``KeyboardInterrupt`` at any bytecode of the main thread, so an interrupted
driver could also leave a worker half-started (not yet known to the pool, so never stopped) or a pool half-stopped
(its manager thread still closing its pipes while the interpreter exits: CPython 3.11's exit hook of
``concurrent.futures`` then writes to a closed pipe, ``OSError: [Errno 9] Bad file descriptor`` on stderr after
``interrupted``). ``sigint_held`` prevents both:

- SIGINT is blocked in the calling thread (``pthread_sigmask``, signal(7)): a process started inside inherits the
  blocked mask across fork and exec, so a Ctrl-C during its start stays pending until its initializer sets
  SIGINT to ignored (which discards a pending one, POSIX ``sigaction``) and unblocks it. multiprocessing starts
  its resource tracker the same way (CPython bpo-33613);
- the driver's own Ctrl-C is held by a Python handler and raised as ``KeyboardInterrupt`` on leaving (a SIGINT
  the kernel gives another thread still reaches the main thread's handler, signal module docs): never lost.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Inside: SIGINT blocked in this thread (inherited by processes started here) and, in the main thread with
    Python's default handler, a Ctrl-C held back and raised as ``KeyboardInterrupt`` on leaving. A no-op where
    signals cannot be blocked (Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held: list[int] = []
    hold = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)  # (else: the caller's own handling)
    if hold:
        signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT is delivered here, to the handler
        if hold:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def ignore_sigint() -> None:
    """In a worker process started under ``sigint_held``: ignore SIGINT (the driver stops its workers), dropping
    one that came while it started, then unblock it."""
    with contextlib.suppress(AttributeError, ValueError):  # (no such signal handling on Windows)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
