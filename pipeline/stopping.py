"""Ctrl-C and SIGTERM during a pipeline run: a flag the worker threads see, never an exception in the middle.

While ``Runner.run`` waits for its threads, ``StopSignals.installed()`` replaces Python's SIGINT handler (and
``run_cli``'s SIGTERM handler, ``errors.on_sigterm``) with ones that count:

- first Ctrl-C: the source stops; what is queued is drained and encoded, the output kept as ``.partial``;
- second Ctrl-C, or SIGTERM (``timeout``, systemd, ``docker stop``: a kill follows within seconds): ``abort``
  is set, the queues are left, what was encoded is kept;
- a third signal is a forced stop: ``KeyboardInterrupt`` (``Terminated`` for SIGTERM) is raised at once, and the
  call in progress (a model run, an encode) is abandoned (``errors.run_cli`` then ends the process without the
  interpreter's finalisation, which would destroy the native runtimes under that call).

Why not let ``KeyboardInterrupt`` through: it can surface at any bytecode of the main thread, also outside a
``try`` around the join (the output was then aborted instead of kept); and one raised while the process thread
was inside the model (the warm-up) ended the interpreter under it: ONNX Runtime's thread pool died with
``terminate called without an active exception`` (SIGABRT, 1 run in ~10 when stopped during the warm-up).
A program that left SIGTERM at its default (not a console script) keeps its default.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from stylize_video.errors import Terminated, on_sigterm
from stylize_video.pipeline.io.items import Source


class StopSignals:
    """Counts stop signals for one run; ``count`` > 0 means stopped, ``signum`` is the first signal's number."""

    def __init__(self, source: Source, abort: threading.Event) -> None:
        self.source, self.abort = source, abort
        self.count = 0
        self.signum: int | None = None

    @property
    def forced(self) -> bool:
        """A third signal: the run stopped waiting for its threads."""
        return self.count > 2

    @property
    def name(self) -> str | None:
        """``"SIGINT"`` / ``"SIGTERM"`` once stopped, else None."""
        return signal.Signals(self.signum).name if self.signum else None

    def on_sigint(self, signum: int, frame: object) -> None:
        self._stop(signal.SIGINT)
        if self.count > 1:
            self.abort.set()

    def on_sigterm(self, signum: int, frame: object) -> None:
        self._stop(signal.SIGTERM)
        self.abort.set()

    def _stop(self, signum: int) -> None:
        self.count += 1
        self.signum = self.signum or signum
        self.source.stop()
        if self.forced:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers above while the block runs (main thread only: elsewhere Python allows no handler)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self.on_sigint)
        term = signal.getsignal(signal.SIGTERM)
        if term is on_sigterm:
            signal.signal(signal.SIGTERM, self.on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if term is on_sigterm:
                signal.signal(signal.SIGTERM, term)
