"""PyTorch backend: our checkpoints / pytorch-examples ``.pth`` (or any ``nn.Module``) run in eager or compiled mode.

FP16 keeps every normalisation layer in FP32: instance-norm statistics over a whole frame overflow
FP16 (variance > 65504 is easy with 0..255 inputs), the failure reported for ONNX Runtime and
TensorRT FP16 TransformerNets. Convolutions run in FP16 on CUDA with channels_last (tensor cores).
"""

from __future__ import annotations

import os
import warnings

import torch
from stylize_video.cliargs import resolve_device  # one --device check for every script (also imported from here)
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.sizerules import SizeRules
from torch import nn

_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


class Fp32Norm(nn.Module):
    """Runs the wrapped normalisation in FP32 and casts back. (N, C, H, W) -> same shape and dtype."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.float()).to(x.dtype)


def half_keep_norms_fp32(model: nn.Module) -> nn.Module:
    """``model.half()`` except normalisation layers, which are wrapped in ``Fp32Norm``. Mutates and returns."""
    _wrap_norms(model)
    model.half()
    for module in model.modules():
        if isinstance(module, Fp32Norm):
            module.norm.float()
    return model


def _wrap_norms(model: nn.Module) -> None:
    for name, child in list(model.named_children()):
        if isinstance(child, _NORMS):
            setattr(model, name, Fp32Norm(child))
        else:
            _wrap_norms(child)


# torch.compile modes (https://pytorch.org/docs/stable/generated/torch.compile.html): the first two
# capture CUDA graphs; max-autotune also autotunes Triton/cuDNN kernel choices (minutes of compiling).
COMPILE_MODES = ("max-autotune", "reduce-overhead", "max-autotune-no-cudagraphs", "default")


def compile_mode(compile: bool | str, device: torch.device) -> str | None:
    """``compile`` (False, True or a mode name) -> the torch.compile mode, or None for eager.

    True means max-autotune on CUDA (Triton autotuning + CUDA graphs) and default on the CPU (inductor C++).
    """
    if compile is False or compile is None:
        return None
    if compile is True:
        return "max-autotune" if device.type == "cuda" else "default"
    if compile not in COMPILE_MODES:
        raise StylizeError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got {compile!r}")
    return compile


class TorchBackend(Backend):
    """An ``nn.Module`` with the 0..255 NCHW RGB convention, on ``device`` in ``precision``."""

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "fp32",
                 compile: bool | str = False, scale: int | None = None) -> None:
        self.device = resolve_device(device)
        if precision not in ("fp16", "fp32"):
            raise StylizeError(f"precision must be fp16 or fp32, got {precision!r}")
        self.precision = precision
        self.scale = scale if scale is not None else int(getattr(model, "scale", 1))
        self.size_rules = getattr(model, "size_rules", None) or SizeRules()
        model = model.eval().to(self.device)
        if precision == "fp16":
            model = half_keep_norms_fp32(model)
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._channels_last = self.device.type == "cuda"
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.name = "torch"
        self.compile_mode = compile_mode(compile, self.device)
        if self.compile_mode is not None:
            model = torch.compile(model, mode=self.compile_mode, fullgraph=False, dynamic=False)
            self.name = "torch-compile"
        self.model = model
        self._closed = False

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self._dtype)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.model(x)
        if self.name == "torch-compile" and self.device.type == "cuda":
            y = y.clone()  # CUDA-graph outputs are overwritten by the next replay
        return y.float().contiguous()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.model = None  # type: ignore[assignment]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()


def load_torch_backend(path: str | os.PathLike[str], device: str | torch.device = "auto", precision: str = "fp32",
                       compile: bool | str = False) -> TorchBackend:
    """Load our checkpoint, a pytorch/examples state_dict or a spandrel architecture via
    ``stylize_video.train.checkpoint.load_model``; FP16 falls back to FP32 (with a warning) for architectures
    that do not support it."""
    from stylize_video.train.checkpoint import load_model

    dev = resolve_device(device)
    if precision == "fp16" and dev.type == "cpu":
        warnings.warn("FP16 on the CPU is slow and gains nothing; consider --precision fp32", stacklevel=2)
    model, info = load_model(path, "cpu")
    if precision == "fp16" and not info.supports_half:
        warnings.warn(f"{info.label} does not support FP16 (spandrel: supports_half=False); running in FP32",
                      stacklevel=2)
        precision = "fp32"
    backend = TorchBackend(model, dev, precision, compile, scale=info.scale)
    backend.info = info  # type: ignore[attr-defined] - what the summary names (architecture, source)
    return backend
