"""Hand-off between the decode thread and the model: keep-newest (live) or bounded blocking (files), and pacing.

A live consumer slower than its source must not queue behind it (the lag would grow without bound, PyAV #956):
``LatestSlot`` keeps only the newest frame and counts the ones it replaced. ``BoundedQueue`` is the lossless
alternative for files, where back-pressure simply slows the reader. ``Pacer`` makes a file behave like a camera.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Mailbox(Protocol[T]):
    """One producer, one consumer. ``get`` returns None once closed and empty."""

    dropped: int

    def put(self, item: T) -> None: ...
    def get(self, timeout: float | None = None) -> T | None: ...
    def close(self) -> None: ...


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` replaces a waiting item and counts it in ``dropped``. Never blocks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._closed:
                return
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

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

    def abort(self) -> None:
        """Close and discard what is waiting (consumer is gone)."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()


class BoundedQueue(Generic[T]):
    """FIFO of ``maxsize`` items; ``put`` blocks while full, so nothing is dropped."""

    def __init__(self, maxsize: int = 2) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._cond = threading.Condition()
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._closed = False
        self.dropped = 0  # always 0: part of the Mailbox interface

    def put(self, item: T) -> None:
        with self._cond:
            self._cond.wait_for(lambda: len(self._items) < self._maxsize or self._closed)
            if self._closed:
                return
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
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
