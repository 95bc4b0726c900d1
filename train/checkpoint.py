"""Checkpoint format of our own, plus loading of bare pytorch/examples state_dicts and of any architecture
spandrel detects (``stylize_video.train.spandrel_models``: Real-ESRGAN, SwinIR, HAT, ... as ``.pth`` or ``.safetensors``).

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
from stylize_video.outfiles import partial_path
from stylize_video.sizerules import SizeRules
from stylize_video.train.networks import TASK_OF_ARCH, build_network
from torch import nn

FORMAT = "stylize-video/checkpoint/1"
# Pre-0.4 InstanceNorm checkpoints carried running stats that modern InstanceNorm2d rejects.
_LEGACY_KEY = re.compile(r"(^|\.)in\d+\.running_(mean|var)$")
# Keys only a TransformerNet (ours / pytorch/examples) has: a bare state dict with them is one, even a broken one.
_TRANSFORMER_NET_KEYS = ("conv1.conv2d.weight", "deconv3.conv2d.weight")


@dataclass
class ModelInfo:
    """What a checkpoint says about its network."""

    arch: str
    task: str
    scale: int
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    source: str = "stylize-video"  # or "pytorch-examples" for bare state_dicts, "spandrel (...)" for others
    name: str = ""  # architecture name for people, e.g. "RealESRGAN Compact"; empty: ``arch``
    size_rules: SizeRules = field(default_factory=SizeRules)  # input sizes the network accepts
    supports_half: bool = True  # False: FP16 is refused (export) or falls back to FP32 (runtime)
    tiling: str = "supported"  # spandrel's ModelTiling: supported | discouraged | internal

    @property
    def label(self) -> str:
        """``RealESRGAN Compact x4 (spandrel)`` / ``transformer_net``: what summaries print."""
        if not self.arch.startswith("spandrel:"):
            return self.arch + (f" x{self.scale}" if self.scale > 1 else "")
        return f"{self.name or self.arch} x{self.scale} (spandrel)"


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


def _load_object(path: Path) -> Any:
    """The file's content: safetensors by suffix, else ``torch.load(weights_only=True)`` (no pickled code runs)."""
    if path.suffix.lower() == ".safetensors":
        from stylize_video.train.spandrel_models import read_safetensors

        return read_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(9)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch.save: a zip, or (torch < 1.6) a pickle
        hint = "; it looks like safetensors: rename it to .safetensors" if head[8:9] == b"{" else ""
        raise StylizeError(f"{path} is not a PyTorch checkpoint (not a zip or pickle file{hint})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for non-checkpoint files
        pickled = _pickled_object_message(path) if isinstance(exc, pickle.UnpicklingError) else None
        if pickled:
            raise StylizeError(pickled) from None
        raise StylizeError(f"{path} is not a readable PyTorch checkpoint ({_torch_reason(exc)})") from None


def _torch_reason(exc: Exception) -> str:
    """The part of ``torch.load``'s message that says what is wrong with the file: not its advice to retry with
    ``weights_only=False`` (which would run code from the file) or to file an issue."""
    text = _ANSI.sub("", str(exc)).strip()
    if "WeightsUnpickler error:" in text:  # a pickle that is damaged or not one torch.save writes
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].strip()
        return f"damaged or not written by torch.save: {detail or 'unreadable pickle'}"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split(". ")[0][:200]


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint file into our dict form.

    Bare state_dicts with TransformerNet's keys become a ``transformer_net`` entry; any other state dict
    (bare, or wrapped as ``params`` / ``params_ema`` / ``state_dict`` / ``model``, ``.pth`` or ``.safetensors``)
    becomes an ``arch="spandrel"`` entry that ``load_model`` hands to spandrel's detection.
    """
    path = Path(path)
    if not path.is_file():
        raise StylizeError(f"checkpoint not found: {path}")
    obj = _load_object(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if _is_state_dict(obj) and all(k in obj for k in _TRANSFORMER_NET_KEYS):
        # pytorch/examples saves the TransformerNet state_dict alone (.pth / .model).
        return {"format": FORMAT, "arch": "transformer_net", "task": "style", "scale": 1,
                "state_dict": obj, "config": {}, "step": 0, "source": "pytorch-examples"}
    if isinstance(obj, dict) and obj:
        return {"format": FORMAT, "arch": "spandrel", "state_dict": obj, "source": "spandrel"}
    kind = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise StylizeError(f"{path} holds {kind}, not a state dict of tensors")


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
    """Load a network for inference (eval mode) from our checkpoint, a pytorch/examples ``.pth``, or any state
    dict spandrel detects. The network takes and gives (N, 3, H, W) float RGB 0..255 (H, W within
    ``info.size_rules``); errors are one-line ``StylizeError``s."""
    ckpt = read_checkpoint(path)
    if ckpt.get("arch") == "spandrel":
        from stylize_video.train.spandrel_models import load_spandrel

        net, facts = load_spandrel(ckpt["state_dict"], path)
        return net.to(device).eval(), ModelInfo(**facts)
    arch, scale = ckpt.get("arch"), int(ckpt.get("scale", 1))
    try:
        model = build_network(str(arch), scale)
    except ValueError as exc:
        raise StylizeError(f"{path}: {exc}") from None
    load_state(model, ckpt["state_dict"], name=str(path))
    info = ModelInfo(arch=str(arch), task=TASK_OF_ARCH[str(arch)], scale=scale, step=int(ckpt.get("step", 0)),
                     config=dict(ckpt.get("config", {})), source=str(ckpt.get("source", "stylize-video")),
                     size_rules=getattr(model, "size_rules", SizeRules()))
    return model.to(device).eval(), info


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, info: ModelInfo, **training_state: Any) -> Path:
    """Write our checkpoint atomically (temporary name, then rename). Extra keys: optimizer, rng, ..."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "arch": info.arch, "task": info.task, "scale": info.scale,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "config": info.config, "step": info.step, **training_state}
    tmp = partial_path(path)
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
