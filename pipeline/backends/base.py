"""The contract every inference backend honours (torch, ONNX Runtime, TensorRT).

The frame path, the live mode, the ``Stylizer`` API and the benchmarks all talk to a model only
through this interface, so adding a backend never forks the frame path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

import torch


class Backend(ABC):
    """A loaded image-to-image model.

    ``__call__``: (N, 3, H, W) float32 RGB in 0..255 on ``self.device`` ->
    (N, 3, H * scale, W * scale) float32 RGB in 0..255 (not clamped) on ``self.device``.
    Calls are issued on the caller's current CUDA stream (``torch.cuda.current_stream()``) and are
    asynchronous with respect to the host, like any torch op.
    """

    #: short name shown in reports, e.g. "torch", "torch-compile", "onnxruntime-cuda", "tensorrt"
    name: str
    #: where inputs must live and outputs are produced
    device: torch.device
    #: "fp32" or "fp16": the precision the model computes in
    precision: str
    #: output / input size ratio; None until known (metadata or a probe run)
    scale: int | None
    #: input sizes the model accepts (``stylize_video.sizerules.SizeRules``); None: accepts any size.
    #: ``stylize_video.pipeline.sizing.SizedBackend`` pads to them and crops back.
    size_rules: object | None = None
    #: largest batch the model takes (a fixed-batch graph, an engine profile); None: no limit
    max_batch: int | None = None

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def close(self) -> None:
        """Release device memory and sessions. Idempotent."""

    def __enter__(self) -> Backend:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
