"""Timestamp pacing: ``Pacer`` makes a file behave like a camera (``PacedSource``).

The keep-newest hand-off used in real-time mode is ``stylize_video.pipeline.slot.LatestSlot`` (part of the runner).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Pacer:
    """Sleeps so that media time ``t`` is released at ``t / speed`` after the first frame (like ``ffmpeg -re``).

    Timestamps jumping backwards or more than ``resync_s`` ahead re-anchor the clock instead of stalling,
    so looping or concatenated inputs keep playing.
    """

    def __init__(self, speed: float = 1.0, *, resync_s: float = 2.0, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.resync_s = resync_s
        self._stop = stop or threading.Event()
        self._clock = clock
        self._anchor: tuple[float, float] | None = None  # (media time, wall time)
        self._last_t: float | None = None

    def wait(self, t: float | None) -> None:
        """Block until media time ``t`` (seconds) is due; frames without a timestamp pass at once."""
        if t is None:
            return
        now = self._clock()
        if self._anchor is None or (self._last_t is not None and t < self._last_t):
            self._anchor = (t, now)
        target = self._anchor[1] + (t - self._anchor[0]) / self.speed
        if target - now > self.resync_s:
            self._anchor, target = (t, now), now
        self._last_t = t
        if target > now:
            self._stop.wait(target - now)
