"""The model files the variants load, derived from ``--model`` with the export stage's own API.

A checkpoint becomes an FP32 ONNX graph (``stylize_video.export.onnx_export``), which becomes a mixed-FP16 graph
(``stylize_video.export.fp16``) or a TensorRT engine (``stylize_video.export.tensorrt``). Results are cached in the work
directory under the weights' hash, so repeated runs do not re-export.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from stylize_video.benchmarks.model_bench import SkipVariant
from stylize_video.benchmarks.variants import Variant
from stylize_video.errors import StylizeError
from stylize_video.sizerules import SizeRules

# --random-weights kind -> (architecture, scale)
RANDOM_ARCH = {"style": ("transformer_net", 1), "sr4": ("sr_net", 4)}


def make_random_checkpoint(kind: str, work_dir: Path, seed: int = 0) -> Path:
    """An untrained network saved as our checkpoint, for model-free smoke runs (explicitly requested).

    The last convolution is rescaled so outputs spread over 0..255 (mean ~128, std ~50) like a trained
    model's: raw random outputs sit near 0 and clamp to black, which would make every backend's PSNR
    trivially perfect.
    """
    from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
    from stylize_video.train.networks import TASK_OF_ARCH, build_network

    arch, scale = RANDOM_ARCH[kind]
    torch.manual_seed(seed)
    model = build_network(arch, scale).eval()
    _spread_outputs(model, seed)
    info = ModelInfo(arch=arch, task=TASK_OF_ARCH[arch], scale=scale,
                     config={"random_weights": True, "seed": seed}, source="stylize-bench --random-weights")
    return save_checkpoint(work_dir / f"random-{kind}-seed{seed}.pth", model, info)


@torch.no_grad()
def _spread_outputs(model: torch.nn.Module, seed: int, mean: float = 128.0, std: float = 50.0) -> None:
    """Affinely rescale the last Conv2d so outputs on an image-like probe have ``mean`` and ``std``.

    The output is ``k * (W y + b) + const`` for some k the architecture fixes (1, or 255 for SRNet);
    k is measured by nudging the bias, so no architecture is special-cased.
    """
    from stylize_video.benchmarks.quality import synthetic_frames

    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    x = synthetic_frames(1, 48, 64, seed)
    y0 = model(x)
    last.bias += 1.0
    k = float((model(x) - y0).mean())
    last.bias -= 1.0
    a = std / max(float(y0.std()), 1e-6)
    last.weight *= a
    last.bias *= a
    last.bias += (mean - a * float(y0.mean())) / k


def describe_model(path: Path, fmt: str, random_weights: str | None) -> dict[str, Any]:
    """The ``model`` record: task and scale from the checkpoint, the ONNX metadata or the engine sidecar."""
    task: str | None = None
    scale: int | None = None
    arch: str | None = None
    if fmt == "ckpt":  # ours, pytorch/examples, or any architecture spandrel detects
        from stylize_video.train.checkpoint import load_model

        _net, info = load_model(path, "cpu")
        task, scale, arch = info.task, info.scale, info.label
    elif fmt in ("onnx", "plan"):
        try:
            if fmt == "onnx":
                from stylize_video.export.metadata import read_metadata as read
            else:  # the engine's sidecar, written by stylize-export engine
                from stylize_video.export.engine_meta import read_meta as read
            meta = read(path)
            task, scale = meta.task, int(meta.scale)
            arch = getattr(meta, "arch", None)
        except (ImportError, StylizeError):  # foreign file: the backend finds the scale when it loads
            pass
    return {"path": str(path), "format": fmt, "task": task, "scale": scale, "arch": arch,
            "random_weights": random_weights}


class Artifacts:
    """``variant -> model file`` for ``run_model_bench``; raises ``SkipVariant`` with the reason when impossible.

    ``shapes`` (NCHW) are every input the run will feed: a TensorRT engine is built with the export
    stage's default dynamic profile for the task, widened until it admits all of them.
    """

    def __init__(self, model: Path, fmt: str, work_dir: Path, *, task: str | None = None, scale: int = 1,
                 shapes: list[tuple[int, int, int, int]] | None = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.model, self.fmt, self.work_dir, self.log = model, fmt, work_dir, log
        self.task, self.scale, self.shapes = task or "style", scale, shapes or []
        self._made: dict[str, Path] = {}
        self._makers: dict[str, Callable[[], Path]] = {
            "ckpt": self._ckpt, "onnx-fp32": self._onnx_fp32, "onnx-fp16": self._onnx_fp16, "plan": self._plan,
        }

    def __call__(self, variant: Variant) -> Path:
        kind = variant.artifact
        if kind not in self._made:
            self._made[kind] = self._makers[kind]()
        return self._made[kind]

    def _ckpt(self) -> Path:
        if self.fmt != "ckpt":
            raise SkipVariant(f"needs a PyTorch checkpoint, --model is a {self.fmt}")
        return self.model

    def _onnx_fp32(self) -> Path:
        if self.fmt == "onnx":
            if _onnx_precision(self.model) not in (None, "fp32"):
                raise SkipVariant("--model is already an FP16 graph; give the FP32 ONNX or the checkpoint")
            return self.model
        if self.fmt != "ckpt":
            raise SkipVariant(f"an ONNX graph cannot be made from a {self.fmt}")
        try:
            from stylize_video.export.metadata import metadata_for
            from stylize_video.export.onnx_export import export_model, save_atomic
        except ImportError as exc:
            raise SkipVariant(f"ONNX export unavailable ({exc})") from None
        from stylize_video.train.checkpoint import load_model

        model, info = load_model(self.model, "cpu")
        meta = metadata_for(model, info)
        out = self.work_dir / f"{self.model.stem}-{meta.weights_sha256[:12]}.onnx"
        if not out.is_file():
            self.log(f"export {self.model.name} -> {out.name}")
            save_atomic(export_model(model, meta), out)
        return out

    def _onnx_fp16(self) -> Path:
        if self.fmt == "onnx" and _onnx_precision(self.model) not in (None, "fp32"):
            return self.model  # already the mixed-FP16 graph
        base = self._made.get("onnx-fp32") or self._onnx_fp32()
        _refuse_fp16(base)
        try:
            import onnx
            from stylize_video.export.fp16 import to_mixed_fp16
            from stylize_video.export.metadata import file_sha256, read_metadata, write_metadata
            from stylize_video.export.onnx_export import save_atomic
        except ImportError as exc:
            raise SkipVariant(f"FP16 conversion unavailable ({exc})") from None
        if self.fmt == "onnx":  # a user's file: key the cached conversion by its content
            out = self.work_dir / f"{base.stem}-{file_sha256(base)[:12]}-fp16.onnx"
        else:  # our export, whose name already carries the weights' hash
            out = base.with_name(base.stem + "-fp16.onnx")
        if not out.is_file():
            self.log(f"fp16  {base.name} -> {out.name}")
            proto = to_mixed_fp16(onnx.load(str(base)))
            try:
                meta = read_metadata(proto)
                meta.precision = "fp16-mixed"
                write_metadata(proto, meta)
            except StylizeError:
                pass  # foreign ONNX without our metadata: convert anyway
            save_atomic(proto, out)
        return out

    def _plan(self) -> Path:
        if self.fmt == "plan":
            return self.model
        try:
            from stylize_video.export.engine_cache import get_or_build
            from stylize_video.export.shapes import default_profile, fit_profile
        except ImportError as exc:
            raise SkipVariant(f"building a TensorRT engine needs stylize_video.export.engine_cache ({exc})") from None
        onnx_path = self._made.get("onnx-fp32") or self._onnx_fp32()
        rules = _refuse_fp16(onnx_path)
        profile = default_profile(self.task, self.scale)
        for shape in self.shapes:  # the engine sees frames padded to the network's size rules
            profile = profile.widened_to((*shape[:2], *rules.padded(*shape[2:])))
        profile = fit_profile(profile, rules)
        self.log(f"engine {onnx_path.name}, profile {profile.describe()} (cached under {self.work_dir / 'engines'})")
        return get_or_build(onnx_path, profile, "fp16", root=self.work_dir / "engines")


def _onnx_precision(path: Path) -> str | None:
    """``"fp32"`` / ``"fp16-mixed"`` from our metadata; None for ONNX files without it."""
    try:
        from stylize_video.export.metadata import read_metadata

        return read_metadata(path).precision
    except (ImportError, StylizeError):
        return None


def _refuse_fp16(onnx_path: Path) -> SizeRules:
    """SkipVariant for FP16 artefacts of an architecture that does not support FP16 (our metadata says so);
    else the graph's size rules (none known: any size)."""
    try:
        from stylize_video.export.metadata import read_metadata

        meta = read_metadata(onnx_path)
    except (ImportError, StylizeError):
        return SizeRules()
    if not meta.supports_half:
        raise SkipVariant(f"{meta.arch} does not support FP16 (spandrel: supports_half=False)")
    return meta.size_rules
