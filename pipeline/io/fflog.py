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
level with None and prints a traceback (seen under load in the fuzz tests). FFmpeg's own callback with
FFmpeg's level at QUIET is put back instead: it prints nothing and never touches Python.
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
        self._quiet_at: int | None = None  # get_level() right after this module turned the log off

    def open(self, level: int) -> None:
        with self._lock:
            if not self._open:
                self._before = self._application_level()
                self._repeats = av.logging.get_skip_repeated()
                av.logging.set_skip_repeated(False)  # an earlier probe's equal line would be dropped
            self._open[level] += 1
            self._apply()

    def close(self, level: int) -> None:
        with self._lock:
            self._open[level] -= 1
            if self._open[level] <= 0:
                del self._open[level]
            if self._open:
                self._apply()
                return
            av.logging.set_skip_repeated(self._repeats)
            if self._before is None:
                av.logging.set_libav_level(_AV_LOG_QUIET)
                av.logging.restore_default_callback()  # PyAV's callback out; FFmpeg's prints nothing
                self._quiet_at = av.logging.get_level()
            else:
                av.logging.set_level(self._before)
                self._quiet_at = None

    def _apply(self) -> None:
        levels = [*self._open, *([] if self._before is None else [self._before])]
        av.logging.set_level(max(levels))  # FFmpeg's levels grow with verbosity

    def _application_level(self) -> int | None:
        """PyAV's level as the application left it: None for PyAV's default and for this module's own
        "off" (PyAV still reports the last level then), unless the application set one since."""
        level = av.logging.get_level()
        return None if level is None or level == self._quiet_at else level


_LOG = _LogWindows()
