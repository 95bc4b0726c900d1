"""``--style NAME``: find the model files ``stylize-export fetch NAME`` put in the cache.

``fetch`` writes ``<cache>/models/NAME.pth`` (our checkpoint) and ``<cache>/models/NAME.onnx``; the
TensorRT engine is built on first use through ``stylize_video.export.engine_cache.get_or_build`` (cached per GPU,
TensorRT version, precision and shape profile).
"""

from __future__ import annotations

from pathlib import Path

from stylize_video.errors import StylizeError


def _tensorrt_usable() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("tensorrt") is not None


def resolve_style(style: str, backend: str = "auto", precision: str = "fp16") -> Path:
    """Model file for ``style`` suited to ``backend`` ("auto": engine on CUDA + TensorRT, else ONNX, else .pth)."""
    from stylize_video.export.engine_cache import cache_root
    from stylize_video.export.registry import styles

    name = style.strip().lower().replace("_", "-")
    if name not in styles():
        raise StylizeError(f"unknown style {style!r}; known: {', '.join(styles())}")
    models = cache_root() / "models"
    pth, onnx = models / f"{name}.pth", models / f"{name}.onnx"
    if not pth.is_file() and not onnx.is_file():
        raise StylizeError(f"style {name} is not downloaded yet; run: stylize-export fetch {name}")
    if backend == "tensorrt" or (backend == "auto" and onnx.is_file() and _tensorrt_usable()):
        if not onnx.is_file():
            raise StylizeError(f"{onnx} is missing; run: stylize-export fetch {name}")
        from stylize_video.export.engine_cache import get_or_build
        from stylize_video.export.shapes import build_profile

        return get_or_build(onnx, build_profile("style", 1), precision)
    if backend == "onnxruntime" or (backend == "auto" and onnx.is_file()):
        if not onnx.is_file():
            raise StylizeError(f"{onnx} is missing; run: stylize-export fetch {name}")
        return onnx
    if not pth.is_file():
        raise StylizeError(f"{pth} is missing; run: stylize-export fetch {name}")
    return pth
