"""FFmpeg's own reason for a failure, for the one error line.

PyAV drops FFmpeg's log by default (``av.logging`` level None), so an error is only ``Invalid argument``
while FFmpeg said why (``[mov] vp9 only supported in MP4.``, ``[mp4] unsupported channel layout``).
``ffmpeg_errors()`` turns FFmpeg's log on at error level for the calling thread while a block runs and
collects what it says (nothing is printed); ``FFmpegErrors.reason(exc)`` picks the line for the message.
Log lines of other threads are not collected (``av.logging.Capture(local=True)``); the previous level is
restored at the end (``restore_level``: PANIC in place of None, see there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av
import av.logging


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
    previous, repeats = av.logging.get_level(), av.logging.get_skip_repeated()
    with av.logging.Capture(local=True) as logs:
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)  # (PyAV drops a line equal to the previous one, e.g. an earlier probe's)
        try:
            yield FFmpegErrors(logs)
        finally:
            restore_level(previous)
            av.logging.set_skip_repeated(repeats)


def restore_level(previous: int | None) -> None:
    """Set PyAV's log level back to ``previous``, but never to None: ``set_level(None)`` sets the threshold to
    None before it takes PyAV's callback out, so a decoder or encoder thread already inside the callback
    compares a level with None and prints a traceback (seen under load in the fuzz tests). PANIC prints
    nothing either (FFmpeg's error lines only reach PyAV's error bookkeeping)."""
    av.logging.set_level(av.logging.PANIC if previous is None else previous)
