"""Checkpoint format of our own, plus loading of bare pytorch/examples state_dicts.

Our ``.pth`` is a dict::

    {"format": FORMAT, "arch": str, "task": "style"|"sr", "scale": int,
     "state_dict": {...}, "config": {...}, "step": int,
     # training checkpoints only:
     "optimizer": {...}, "rng": {...}, "scaler": {...}}

Everything in it loads with ``torch.load(weights_only=True)``: no pickled code is ever run.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from stylize_video.errors import StylizeError
from stylize_video.train.networks import TASK_OF_ARCH, build_network
from torch import nn

FORMAT = "stylize-video/checkpoint/1"
# Pre-0.4 InstanceNorm checkpoints carried running stats that modern InstanceNorm2d rejects.
_LEGACY_KEY = re.compile(r"(^|\.)in\d+\.running_(mean|var)$")


@dataclass
class ModelInfo:
    """What a checkpoint says about its network."""

    arch: str
    task: str
    scale: int
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    source: str = "stylize-video"  # or "pytorch-examples" for bare state_dicts


def strip_legacy_keys(state_dict: dict[str, torch.Tensor], keep: Collection[str] = ()) -> dict[str, torch.Tensor]:
    """Drop ``in\\d+.running_mean/var`` (top level and inside residual blocks) left by torch < 0.4.

    Keys in ``keep`` survive: SRNet's batch-norm layers are also named ``in1``/``res.N.in1`` and
    their running statistics are real.
    """
    return {k: v for k, v in state_dict.items() if k in keep or not _LEGACY_KEY.search(k)}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # torch's messages carry terminal colour codes


def _pickled_object_message(path: Path) -> str | None:
    """One line for a file ``weights_only`` refuses because it holds pickled objects (``torch.save(model)``),
    None for anything else (garbage, a damaged file). Unpickling objects would run code named in the file, so
    they are not loaded; the names are read without running anything
    (``torch.serialization.get_unsafe_globals_in_checkpoint``)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - not a torch zip / pickle at all
        return None
    if not names:
        return None
    what = "a whole pickled model" if any(n.startswith("torch.nn.modules.") for n in names) else "pickled objects"
    return (f"{path} holds {what} (torch.save(model)), not weights: loading it would run code from the "
            "file, so it is not loaded. Save the weights instead: torch.save(model.state_dict(), 'weights.pth')")


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint file into our dict form; bare state_dicts become a ``transformer_net`` entry."""
    path = Path(path)
    if not path.is_file():
        raise StylizeError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for non-checkpoint files
        pickled = _pickled_object_message(path) if isinstance(exc, pickle.UnpicklingError) else None
        if pickled:
            raise StylizeError(pickled) from None
        text = _ANSI.sub("", str(exc)).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise StylizeError(f"{path} is not a PyTorch checkpoint ({first})") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if _is_state_dict(obj):
        # pytorch/examples saves the TransformerNet state_dict alone (.pth / .model).
        return {"format": FORMAT, "arch": "transformer_net", "task": "style", "scale": 1,
                "state_dict": obj, "config": {}, "step": 0, "source": "pytorch-examples"}
    raise StylizeError(f"{path} is not a stylize-video checkpoint or a TransformerNet state_dict")


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor], name: str = "checkpoint") -> None:
    """Strict load with legacy keys dropped; mismatches name the missing and unexpected keys."""
    expected = set(model.state_dict())
    state_dict = strip_legacy_keys(state_dict, keep=expected)
    missing = sorted(expected - set(state_dict))
    unexpected = sorted(set(state_dict) - expected)
    if missing or unexpected:
        def _few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "") if keys else "none"
        raise StylizeError(
            f"{name} does not fit {type(model).__name__}: missing keys: {_few(missing)}; unexpected keys: {_few(unexpected)}"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise StylizeError(f"{name} does not fit {type(model).__name__}: {str(exc).splitlines()[-1].strip()}") from None


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, ModelInfo]:
    """Load a network for inference (eval mode) from our checkpoint or a pytorch/examples ``.pth``."""
    ckpt = read_checkpoint(path)
    arch, scale = ckpt.get("arch"), int(ckpt.get("scale", 1))
    try:
        model = build_network(str(arch), scale)
    except ValueError as exc:
        raise StylizeError(f"{path}: {exc}") from None
    load_state(model, ckpt["state_dict"], name=str(path))
    info = ModelInfo(arch=str(arch), task=TASK_OF_ARCH[str(arch)], scale=scale, step=int(ckpt.get("step", 0)),
                     config=dict(ckpt.get("config", {})), source=str(ckpt.get("source", "stylize-video")))
    return model.to(device).eval(), info


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, info: ModelInfo, **training_state: Any) -> Path:
    """Write our checkpoint atomically (temporary name, then rename). Extra keys: optimizer, rng, ..."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "arch": info.arch, "task": info.task, "scale": info.scale,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "config": info.config, "step": info.step, **training_state}
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
