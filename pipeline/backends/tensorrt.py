"""TensorRT backend: a ``.plan`` from ``stylize-export engine`` run by ``stylize_video.export.tensorrt.TensorRTRunner``.

Before anything touches CUDA, the engine's sidecar (``X.plan.json``, ``stylize_video.export.engine_meta``) is
checked against this GPU and TensorRT version, and every frame size against the engine's shape
profile, so a mismatch is one line naming the ``stylize-export engine`` command that rebuilds it.
Inference is ``execute_async_v3`` on the caller's current stream (the frame processor's own stream)
replayed from a CUDA graph captured for the current input shape (captured again when it changes).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.backends.torch import resolve_device


def check_engine_shape(meta: object, plan: str | os.PathLike[str], shape: tuple[int, int, int, int]) -> None:
    """Refuse an NCHW input outside the engine's profile, with the rebuild command (stylize_video.export.engine_meta)."""
    from stylize_video.export.engine_meta import RuntimeEnv, check_compatible

    if not meta.profile.contains(tuple(shape)):  # type: ignore[attr-defined]
        # Checking against the engine's own environment leaves only the shape check to fail.
        same = RuntimeEnv(meta.tensorrt_version, meta.gpu_name, tuple(meta.compute_capability))  # type: ignore[attr-defined]
        check_compatible(meta, same, plan, tuple(shape))  # type: ignore[arg-type]


class TensorRTBackend(Backend):
    """A TensorRT engine behind the ``Backend`` contract (CUDA only)."""

    def __init__(self, plan: str | os.PathLike[str], device: str | torch.device = "auto",
                 cuda_graph: bool = True) -> None:
        from stylize_video.export import tensorrt as ett
        from stylize_video.export.engine_meta import check_compatible, read_meta

        self._runner = None
        self.plan = Path(plan)
        self.meta = read_meta(self.plan)  # refuses a plan without its sidecar, with the rebuild command
        dev = resolve_device(device)
        if dev.type != "cuda":
            raise StylizeError(f"{self.plan.name} is a TensorRT engine and needs a CUDA GPU; on this machine use "
                               f"--onnx {self.meta.onnx_path} (or a --checkpoint) with --device cpu")
        trt = ett.load_tensorrt()
        index = dev.index or 0
        check_compatible(self.meta, ett.probe_env(trt, index), self.plan)
        self.device = torch.device("cuda", index)
        self.precision = self.meta.precision
        self.scale = int(self.meta.scale)
        self.size_rules = self.meta.input_size_rules()  # the network's rules and the profile's minimum
        self.max_batch = self.meta.profile.max_batch
        self.name = "tensorrt"
        self._runner = ett.TensorRTRunner(self.plan, device=index, cuda_graph=cuda_graph, check=False)
        self._runner.__enter__()

    def check_input(self, shape: tuple[int, int, int, int]) -> None:
        """Raise ``StylizeError`` (with the rebuild command) if frames of ``shape`` cannot run."""
        check_engine_shape(self.meta, self.plan, shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self._runner(x.to(self.device), stream=torch.cuda.current_stream(self.device))
        return y.float()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.__exit__(None, None, None)
            self._runner = None
