"""Other people's image-to-image networks, detected and built by spandrel (https://github.com/chaiNNer-org/spandrel).

spandrel (MIT; the loader chaiNNer and ComfyUI use) recognises an architecture from a state dict's keys
and shapes (Real-ESRGAN RRDB and Compact, SwinIR, HAT, OmniSR, DAT, SPAN, ...) and describes it:
scale, channels, size requirements, purpose, FP16/BF16 support. ``spandrel-extra-arches`` (architectures
under non-commercial or otherwise restrictive licences) is used only where the user installed it
(``pip install spandrel-extra-arches``); it is never a dependency.

``SpandrelNet`` wraps the detected module in our convention: (N, 3, H, W) float RGB 0..255 in and out,
not clamped, no internal padding (size rules are applied outside, by every backend the same way).
spandrel is imported only here and only when a checkpoint is not one of ours: it imports every
architecture it knows (seconds on a small CPU).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from stylize_video.errors import StylizeError
from stylize_video.sizerules import SizeRules
from torch import nn

# spandrel purpose -> our task name (ONNX metadata, engine profiles, benchmark sizes)
TASK_OF_PURPOSE = {"SR": "sr", "FaceSR": "sr", "Restoration": "restoration"}
ARCH_PREFIX = "spandrel:"


class SpandrelNet(nn.Module):
    """A spandrel model in the 0..255 convention: ``call(model, x / 255) * 255``.

    Shapes: (N, 3, H, W) -> (N, 3, H * scale, W * scale), float RGB 0..255, not clamped. ``call`` is the
    architecture's own call function (spandrel's ``ImageModelDescriptor`` keeps it; e.g. GFPGAN returns a
    tuple whose first element is the image). H and W must already satisfy ``size_rules``.
    """

    def __init__(self, model: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None,
                 scale: int, size_rules: SizeRules) -> None:
        super().__init__()
        self.model = model
        self._call = call
        self.scale = scale
        self.size_rules = size_rules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._call(self.model, x / 255.0) if self._call is not None else self.model(x / 255.0)
        return y * 255.0


def registry() -> Any:
    """spandrel's main registry, plus ``spandrel-extra-arches`` when that package is installed (opt-in)."""
    import spandrel

    try:
        import spandrel_extra_arches
    except ImportError:
        return spandrel.MAIN_REGISTRY
    reg = spandrel.MAIN_REGISTRY.copy()  # the global registry stays as spandrel ships it
    reg.add(*spandrel_extra_arches.EXTRA_REGISTRY, ignore_duplicates=True)
    return reg


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file as a state dict (CPU); one-line error for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StylizeError(f"{path} is not a readable safetensors file ({first[:160]})") from None


def _hint_extra() -> str:
    try:
        import spandrel_extra_arches  # noqa: F401
    except ImportError:
        return ("; architectures under non-commercial licences need pip install spandrel-extra-arches "
                "(check the model's licence)")
    return ""


def detect(state: dict[str, Any], path: str | os.PathLike[str]) -> Any:
    """spandrel's ``ImageModelDescriptor`` for a (possibly wrapped: params / params_ema / state_dict) state dict.

    Raises ``StylizeError`` (one line) when no architecture matches, when the keys match an architecture but
    the tensors do not fit it (missing keys, wrong shapes), or for models that do not map frames to frames.
    """
    import spandrel

    state = spandrel.canonicalize_state_dict(dict(state))
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise StylizeError(f"{path} holds no tensors: it is not a state dict")
    try:
        with warnings.catch_warnings():  # architectures' own deprecation notes (torch.meshgrid indexing, ...)
            warnings.simplefilter("ignore", UserWarning)
            desc = registry().load(state)
    except spandrel.UnsupportedModelError:
        raise StylizeError(f"{path}: not a stylize-video checkpoint, a pytorch/examples TransformerNet or an "
                           f"architecture spandrel {spandrel.__version__} recognises{_hint_extra()}") from None
    except (KeyError, RuntimeError, ValueError, IndexError, AssertionError, AttributeError, TypeError) as exc:
        # The keys looked like an architecture but a tensor is missing or has another shape.
        what = f"missing key {exc}" if isinstance(exc, KeyError) else (str(exc).strip().splitlines() or [""])[-1].strip()
        arch = _detected_arch(state)
        raise StylizeError(f"{path} is detected as {arch} but its tensors do not fit it: {what[:200]}") from None
    if not isinstance(desc, spandrel.ImageModelDescriptor):
        raise StylizeError(f"{path} is a {desc.architecture.name} {desc.purpose} model: it needs a mask as well as "
                           f"the image, which video frames do not have")
    return desc


def _detected_arch(state: dict[str, Any]) -> str:
    for support in registry().architectures("detection"):
        try:
            if support.detect(state):
                return support.architecture.name
        except Exception:  # noqa: BLE001, S112 - a detector that trips over a broken state dict is not a match
            continue
    return "known"


def check_fits_video(desc: Any, path: str | os.PathLike[str]) -> None:
    """Refuse models that do not map an RGB frame to an RGB frame (grey, RGBA, odd channel counts)."""
    name = desc.architecture.name
    for what, n in (("takes", desc.input_channels), ("gives", desc.output_channels)):
        if n != 3:
            kind = {1: "grey (1-channel)", 4: "RGBA (4-channel)"}.get(n, f"{n}-channel")
            raise StylizeError(f"{path}: this {name} model {what} {kind} images; video frames are RGB, so only "
                               f"3-channel models run")
    if not 1 <= desc.scale <= 16:
        raise StylizeError(f"{path}: {name} scale x{desc.scale} does not fit video (1 to 16 supported)")


def load_spandrel(state: dict[str, Any], path: str | os.PathLike[str]) -> tuple[SpandrelNet, dict[str, Any]]:
    """Build the network for ``state`` (eval mode, CPU, FP32) and the facts ``ModelInfo`` records."""
    desc = detect(state, path)
    check_fits_video(desc, path)
    rules = SizeRules.from_spandrel(desc.size_requirements)
    net = SpandrelNet(desc.model, getattr(desc, "_call_fn", None), int(desc.scale), rules).eval()
    facts = {
        "arch": ARCH_PREFIX + str(desc.architecture.id), "task": TASK_OF_PURPOSE.get(desc.purpose, "restoration"),
        "scale": int(desc.scale), "name": str(desc.architecture.name), "size_rules": rules,
        "supports_half": bool(desc.supports_half), "tiling": desc.tiling.name.lower(),
        "config": {"tags": list(desc.tags), "purpose": desc.purpose, "supports_bfloat16": bool(desc.supports_bfloat16),
                   "spandrel_version": _version()},
        "source": f"spandrel ({Path(path).name})",
    }
    return net, facts


def _version() -> str:
    import spandrel

    return str(spandrel.__version__)
