"""Real-time primitives: the keep-newest hand-off between decode and the model, and timestamp pacing.

A live consumer slower than its source must not queue behind it (the lag would grow without bound, PyAV #956):
``LatestSlot`` keeps only the newest item and counts the ones it replaced; ``pipeline.runner.Runner(realtime=True)``
puts it between its decode and process threads. ``Pacer`` makes a file behave like a camera (``PacedSource``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` replaces a waiting item, counts it in ``dropped`` and returns it.

    One producer, one consumer; ``put`` never blocks.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> T | None:
        """Offer ``item``; returns the item it replaced (the caller may recycle it), or None.

        After ``close`` the item is refused and returned as if replaced.
        """
        with self._cond:
            if self._closed:
                return item
            old, self._item = self._item, item
            if old is not None:
                self.dropped += 1
            self._cond.notify()
            return old

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` seconds (None: until one arrives or close)."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """No more puts; a waiting item is still delivered."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


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
