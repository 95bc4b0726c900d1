"""Turning command-line options (and a resumed checkpoint's config) into task and run configs.

Options left unset (None) take the checkpoint's value when resuming, else the dataclass default.
When resuming, options that would change the optimisation itself are refused, so the resumed run
really continues the original one; paths, iteration count, intervals and device may change.
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, fields
from typing import Any

from stylize_video.errors import StylizeError
from stylize_video.train.losses import LAYER_CHANNELS, PRESETS, PerceptualConfig
from stylize_video.train.losses.perceptual import mse_equivalent_weights
from stylize_video.train.sr import SRConfig, sr_loss_config
from stylize_video.train.style import StyleConfig
from stylize_video.train.trainer import RunConfig

# Fields that may differ between a checkpoint and the resumed run.
RESUMABLE_RUN = {"out", "iterations", "checkpoint_every", "sample_every", "log_every", "workers", "device", "amp"}
RESUMABLE_TASK = {"style_image", "vgg_weights"}


def parse_layers(spec: str, vgg: str, style: bool) -> dict[str, float]:
    """'relu1_2,relu2_2:0.5' -> {name: weight}; a missing weight is 1/C^2 for style layers, 1 for content."""
    known = LAYER_CHANNELS[vgg]
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, weight = item.partition(":")
        if name not in known:
            raise StylizeError(f"unknown {vgg} layer {name!r}; known: {', '.join(known)}")
        try:
            out[name] = float(weight) if weight else (
                mse_equivalent_weights(vgg, [name])[name] if style else 1.0)
        except ValueError:
            raise StylizeError(f"bad layer weight in {item!r} (expected NAME or NAME:WEIGHT)") from None
        if not (math.isfinite(out[name]) and out[name] >= 0):
            raise StylizeError(f"layer weight in {item!r} must be a finite number >= 0")
    return out


def _overlay(obj: Any, args: argparse.Namespace, names: dict[str, str]) -> Any:
    """Copy of dataclass ``obj`` with each field replaced by ``args.<option>`` when that is not None."""
    obj = copy.deepcopy(obj)
    for attr, option in names.items():
        value = getattr(args, option, None)
        if value is not None:
            setattr(obj, attr, value)
    return obj


def perceptual_config(args: argparse.Namespace, base: PerceptualConfig) -> PerceptualConfig:
    cfg = copy.deepcopy(PRESETS[args.loss_net]) if getattr(args, "loss_net", None) else copy.deepcopy(base)
    cfg = _overlay(cfg, args, {"content_weight": "content_weight", "style_weight": "style_weight",
                               "tv_weight": "tv_weight"})
    if getattr(args, "content_layers", None) is not None:
        cfg.content_layers = parse_layers(args.content_layers, cfg.vgg, style=False)
    if getattr(args, "style_layers", None) is not None:
        cfg.style_layers = parse_layers(args.style_layers, cfg.vgg, style=True)
    return cfg


def run_config(args: argparse.Namespace, base: RunConfig) -> RunConfig:
    run = _overlay(base, args, {f.name: f.name for f in fields(RunConfig)})
    if args.no_amp:
        run.amp = False
    return run  # (the ranges of the integer flags: argparse, train/cli.py)


def style_config(args: argparse.Namespace, base: StyleConfig | None) -> StyleConfig:
    if base is None:
        if not args.style_image:
            raise StylizeError("--style-image is required (unless resuming)")
        base = StyleConfig(style_image=args.style_image)
    cfg = _overlay(base, args, {"style_image": "style_image", "image_size": "image_size",
                                "style_size": "style_size", "vgg_weights": "vgg_weights"})
    cfg.loss = perceptual_config(args, cfg.loss)
    return cfg  # (--style-size >= 0, --image-size >= 16: argparse, train/cli.py)


def sr_config(args: argparse.Namespace, base: SRConfig | None) -> SRConfig:
    base = base or SRConfig()
    cfg = _overlay(base, args, {"scale": "scale", "patch_size": "patch_size", "blur_sigma": "blur_sigma",
                                "loss_kind": "loss", "vgg_weights": "vgg_weights"})
    if args.loss is not None and args.loss != base.loss_kind:
        cfg.loss = sr_loss_config(args.loss)
    cfg.loss = _overlay(cfg.loss, args, {"tv_weight": "tv_weight"})
    return cfg


def from_checkpoint(ckpt: dict[str, Any], arch: str, path: str) -> tuple[dict[str, Any], RunConfig]:
    """(task config dict, run config) stored in a training checkpoint; errors if it cannot be resumed."""
    if "optimizer" not in ckpt or "data" not in ckpt:
        raise StylizeError(f"{path} holds a final model, not a training checkpoint: resume from "
                           f"OUT/checkpoints/step_*.pth")
    if ckpt.get("arch") != arch:
        raise StylizeError(f"{path} trains {ckpt.get('arch')}, not {arch}")
    config = ckpt.get("config", {})
    return config["task"], RunConfig(**config["run"])


def style_from_dict(d: dict[str, Any]) -> StyleConfig:
    return StyleConfig(**{**d, "loss": PerceptualConfig(**d["loss"])})


def sr_from_dict(d: dict[str, Any]) -> SRConfig:
    return SRConfig(**{**d, "loss": PerceptualConfig(**d["loss"])})


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'loss': {'tv_weight': 1}} -> {'loss.tv_weight': 1} (per-layer dicts stay whole)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and not k.endswith("_layers"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def refuse_changes(old: Any, new: Any, allowed: set[str]) -> None:
    """Raise if dataclasses ``old`` and ``new`` differ outside ``allowed`` fields."""
    a, b = _flatten(asdict(old)), _flatten(asdict(new))
    changed = sorted(k for k in a if k.split(".")[0] not in allowed and a[k] != b.get(k))
    if changed:
        raise StylizeError(f"cannot change {', '.join(changed)} when resuming (the checkpoint has "
                           f"{', '.join(f'{k}={a[k]}' for k in changed)})")
