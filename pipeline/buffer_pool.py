"""Fixed pools of host buffers the frame path recycles (``stylize_video.pipeline.runner``).

Allocated once per run: a buffer goes back to its pool when the encode thread is done with it, so the pools
also bound how far decode can run ahead.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

import torch

_POLL_S = 0.05


class BufferPool:
    """``count`` flat uint8 host tensors of ``nbytes`` (pinned when CUDA is used), recycled."""

    def __init__(self, count: int, nbytes: int, pin: bool) -> None:
        self.free: queue.Queue[torch.Tensor] = queue.Queue()
        for _ in range(count):
            self.free.put(torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin))

    def get(self, alive: Callable[[], bool]) -> torch.Tensor | None:
        """A free buffer, waiting while ``alive()``; None once it is not (the run is aborting)."""
        while alive():
            try:
                return self.free.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return None

    def put(self, buf: torch.Tensor) -> None:
        self.free.put(buf)
