"""FFmpeg's own reason for a failure, for the one error line.

PyAV drops FFmpeg's log by default (``av.logging`` level None), so an error is only ``Invalid argument``
while FFmpeg said why (``[mov] vp9 only supported in MP4.``, ``[mp4] unsupported channel layout``).
``ffmpeg_errors()`` turns FFmpeg's log on at error level while a block runs and collects what the calling
thread's FFmpeg calls say (nothing is printed); ``FFmpegErrors.reason(exc)`` picks the line for the message.

Why only while a block runs: PyAV's log callback takes the GIL for every error line, from whichever FFmpeg
thread logs it. PyAV frees a codec with the GIL held (``avcodec_free_context`` from ``__dealloc__``), and
a frame-threaded decoder left before its end (a decode loop that breaks, ``--duration``, a stop) joins its
threads there; one of them logging an error at that moment waits for the GIL while the GIL's holder waits
for it: a deadlock (PyAV-Org/PyAV#1849; seen here as a CI run that hung in the benchmarks' decode test).
So the callback is in only while at least one block runs, in any thread (the blocks are counted), and the
last block to end takes it out. Restoring "no log" does not use ``set_level(None)``: that sets PyAV's
threshold to None before it takes the callback out, so a thread already inside the callback compares a
level with None and prints a traceback (seen under load in the fuzz tests). PyAV's level goes to QUIET
(-8, still a number) and FFmpeg's own callback, with FFmpeg's level at QUIET, goes back in instead: it
prints nothing and never touches Python; ``av.logging.get_level()`` reads -8 afterwards.

What a window cannot prevent: another thread freeing a frame-threaded decoder with frames in flight while
a window is open. Our own sources park their decoders' threads before closing (``decode.park_frame_threads``);
an application that decodes with ``thread_type="AUTO"``/``"FRAME"`` beside the library should do the same
(``codec_context.flush_buffers()`` before the container is closed) or run the library in its own process.
While the application has PyAV's log off (PyAV's default), FFmpeg lines of threads without a window of their
own are dropped during a window instead of reaching Python's ``logging``. An application printing FFmpeg's
log through ``av.logging.restore_default_callback()`` gets nothing after a window: FFmpeg's level is left at
QUIET (PyAV cannot read FFmpeg's level back to restore it).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

import av
import av.logging

_AV_LOG_QUIET = -8  # libavutil/log.h: AV_LOG_QUIET, "print no output"


class FFmpegErrors:
    """FFmpeg's error lines logged so far by this thread inside ``ffmpeg_errors()``."""

    def __init__(self, logs: list[tuple[int, str, str]]) -> None:
        self._logs = logs  # filled as FFmpeg logs: (level, component, text)

    @property
    def lines(self) -> list[str]:
        """``["[mov] vp9 only supported in MP4."]``: error lines (and worse), in order."""
        return [f"[{name}] {text.strip()}" if name else text.strip()
                for level, name, text in self._logs if level <= av.logging.ERROR and text.strip()]

    def reason(self, exc: BaseException) -> str:
        """FFmpeg's last error line, else the exception's own text (``strerror`` for FFmpeg errors)."""
        lines = self.lines
        return lines[-1] if lines else getattr(exc, "strerror", None) or str(exc)


@contextlib.contextmanager
def ffmpeg_errors() -> Iterator[FFmpegErrors]:
    """Collect FFmpeg's error lines logged by this thread while the block runs."""
    with ffmpeg_log(av.logging.ERROR) as logs:
        yield FFmpegErrors(logs)


@contextlib.contextmanager
def ffmpeg_log(level: int) -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's log lines up to ``level`` (an ``av.logging`` level: ERROR, INFO, ...) from this thread's
    FFmpeg calls while the block runs, as ``(level, component, text)``; nothing is printed. Blocks may
    overlap across threads: the log runs at the most verbose level any open block asks for (and never
    below one the application set itself), and what was there before comes back when the last one ends."""
    with av.logging.Capture(local=True) as logs:
        _LOG.open(level)
        try:
            yield logs
        finally:
            _LOG.close(level)


class _LogWindows:
    """The process-wide FFmpeg log state behind the open ``ffmpeg_log`` blocks (FFmpeg's log is global)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[int] = Counter()  # level -> blocks open at it
        self._before: int | None = None  # the application's level before the first block; None: no log
        self._repeats = True
        self._others: av.logging.Capture | None = None  # other threads' lines while the application's log is off
        self._applied: int | None = None  # the level the windows set last

    def open(self, level: int) -> None:
        with self._lock:
            if not self._open:
                level_before = av.logging.get_level()
                self._before = None if level_before in (None, _AV_LOG_QUIET) else level_before
                self._repeats = av.logging.get_skip_repeated()
                av.logging.set_skip_repeated(False)  # an earlier probe's equal line would be dropped
                if self._before is None:
                    self._others = av.logging.Capture(local=False)
                    self._others.__enter__()
            self._open[level] += 1
            self._apply()

    def close(self, level: int) -> None:
        with self._lock:
            self._open[level] -= 1
            if self._open[level] <= 0:
                del self._open[level]
            level_now = av.logging.get_level()
            if level_now != self._applied:  # the application set its own level while a window was open
                self._before = None if level_now in (None, _AV_LOG_QUIET) else level_now
            if self._open:
                self._apply()
                return
            av.logging.set_skip_repeated(self._repeats)
            if self._others is not None:
                self._others.__exit__(None, None, None)
                self._others = None
            if self._before is None:
                av.logging.set_level(_AV_LOG_QUIET)  # a number, so a thread inside the callback still compares
                av.logging.set_libav_level(_AV_LOG_QUIET)
                av.logging.restore_default_callback()  # PyAV's callback out; FFmpeg's prints nothing
            else:
                av.logging.set_level(self._before)

    def _apply(self) -> None:
        levels = [*self._open, *([] if self._before is None else [self._before])]
        self._applied = max(levels)  # FFmpeg's levels grow with verbosity
        av.logging.set_level(self._applied)


_LOG = _LogWindows()
