"""NaN/Inf model output: detected per frame without a host sync, reported as one line naming the frame.

An FP16 overflow in a network (instance-norm variance, a large activation) turns frames into NaN,
which the colour conversion would encode as solid green (issue 11, item 8). The check rides on the
conversion that reads every output sample anyway:

* CPU: the packing kernel counts non-finite samples and returns the count (the frame is done then).
* CUDA: a 0-dim device flag computed on the processing stream is copied (non-blocking) into a pinned
  host slot of ``NonFiniteFlags`` before the frame's end event; the encode thread reads the slot only
  after it has waited for that event anyway, so no extra synchronisation is added.

The runner raises ``NonFiniteOutput`` for the first such frame, keeps what was encoded before it as
``<name>.partial.<ext>`` (as on Ctrl-C) and exits 1 with the message.
"""

from __future__ import annotations

import torch
from stylize_video.errors import StylizeError


class NonFiniteOutput(StylizeError):
    """The model produced NaN/Inf for frame ``index`` (0-based, in decode order) at ``seconds`` (or None)."""

    def __init__(self, index: int, seconds: float | None, precision: str) -> None:
        self.index, self.seconds, self.precision = index, seconds, precision
        super().__init__(self.describe())

    def describe(self, partial: str | None = None) -> str:
        """One line: which frame, the likely cause and fix, and where the partial output is."""
        at = f" (t={self.seconds:.3f} s)" if self.seconds is not None else ""
        hint = ("an FP16 overflow in the network; run with --precision fp32" if self.precision == "fp16"
                else "check the model (it does this in FP32 too); --precision fp32 is already in use")
        kept = f"; partial output kept: {partial}" if partial else "; no frame was written"
        return f"model output has NaN/Inf values at frame {self.index}{at}: {hint}{kept}"


class NonFiniteFlags:
    """A ring of ``size`` pinned int32 host slots for per-frame device flags (CUDA only).

    Slot k is reused ``size`` frames later: the runner sizes the ring above its frames in flight
    (``FrameProcessor.reserve_flag_slots``), so a slot is always read before it is written again.
    """

    def __init__(self, size: int, pin: bool) -> None:
        self.size, self.pin = size, pin
        self._slots = [torch.zeros((), dtype=torch.int32, pin_memory=pin) for _ in range(size)]
        self._next = 0

    def slot(self) -> torch.Tensor:
        s = self._slots[self._next]
        self._next = (self._next + 1) % self.size
        return s


def is_nonfinite(flag: int | torch.Tensor | None) -> bool:
    """True when a frame's flag (a CPU count, or a pinned slot read after the frame's event) says NaN/Inf."""
    if flag is None:
        return False
    return bool(int(flag))
