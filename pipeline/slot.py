"""The keep-newest hand-off between decode and the model in real-time mode.

A live consumer slower than its source must not queue behind it (the lag would grow without bound, PyAV #956):
``LatestSlot`` keeps only the newest item and counts the ones it replaced; ``stylize_video.pipeline.runner.Runner(realtime=True)``
puts it between its decode and process threads.
"""

from __future__ import annotations

import threading
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
