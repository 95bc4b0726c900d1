"""Device, mixed precision and RNG state: the parts of a run that depend on the machine."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from stylize_video.cliargs import resolve_device


@dataclass
class Runtime:
    """Where and how a step runs: CUDA with AMP and channels_last when available, else plain CPU fp32."""

    device: torch.device
    amp_dtype: torch.dtype | None  # None: fp32

    @property
    def channels_last(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # Loss scaling only for fp16; bf16 has fp32's exponent range.
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def pick_runtime(device: str = "auto", amp: bool = True) -> Runtime:
    """'auto' -> CUDA if available, else CPU (``cliargs.resolve_device``, StylizeError for a device this machine
    lacks). AMP (bf16 where supported, else fp16) on CUDA only."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed training sizes: let cuDNN pick its fastest kernels
    amp_dtype = None
    if amp and dev.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Runtime(dev, amp_dtype)


def rng_state() -> dict[str, Any]:
    """Global torch RNG states as tensors (loadable with ``weights_only=True``)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_cpu(obj: Any) -> Any:
    """Copy every tensor inside nested dicts/lists/tuples to the CPU (optimizer state on GPU)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj
