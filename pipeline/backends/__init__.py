"""Inference backends behind one ``Backend`` contract, chosen by model file kind or by name.

``load_backend("mosaic.plan")`` -> TensorRT, ``"mosaic.onnx"`` -> ONNX Runtime, ``"mosaic.pth"`` -> PyTorch.
Heavy runtimes (onnxruntime, tensorrt) are imported only by the backend that needs them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stylize_video.errors import StylizeError
from stylize_video.modelfiles import KIND_OF_SUFFIX, accepted_suffixes
from stylize_video.pipeline.backends.base import Backend

if TYPE_CHECKING:  # runtime imports stay lazy: --help and file sniffing need neither onnx nor torch
    from stylize_video.export.conventions import ConventionFlags
    from stylize_video.pipeline.tiling import TileOptions

# model kind -> backend that runs it when --backend auto
DEFAULT_BACKEND: dict[str, str] = {"checkpoint": "torch", "onnx": "onnxruntime", "engine": "tensorrt"}
# backend -> model kinds it can run
ACCEPTS: dict[str, tuple[str, ...]] = {"torch": ("checkpoint",), "onnxruntime": ("onnx",), "tensorrt": ("engine",)}
BACKENDS = ("auto", *ACCEPTS)


def _sniff(path: Path) -> str | None:
    """Model kind from the first bytes when the suffix says nothing."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch zip / legacy pickle
        return "checkpoint"
    if b"ftrt" in head[:32]:  # TensorRT serialized engine magic
        return "engine"
    if head[:1] == b"\x08":  # protobuf field 1 (ir_version) varint: an ONNX ModelProto
        return "onnx"
    return None


def model_kind(path: str | os.PathLike[str]) -> str:
    """"checkpoint" | "onnx" | "engine" for an existing model file; StylizeError otherwise."""
    path = Path(path)
    if not path.exists():
        raise StylizeError(f"model file not found: {path}")
    if not path.is_file():
        raise StylizeError(f"model path is not a file: {path}")
    kind = KIND_OF_SUFFIX.get(path.suffix.lower()) or _sniff(path)
    if kind is None:
        raise StylizeError(f"{path}: unknown model file kind (expected {accepted_suffixes()})")
    return kind


def _torch(path: Path, device: str, precision: str, compile: bool | str, ort_provider: str | None) -> Backend:
    from stylize_video.pipeline.backends.torch import load_torch_backend

    return load_torch_backend(path, device, precision, compile)


def _onnxruntime(path: Path, device: str, precision: str, compile: bool | str, ort_provider: str | None,
                 convention: ConventionFlags | None = None) -> Backend:
    from stylize_video.export.conventions import prepare_onnx
    from stylize_video.pipeline.backends.onnxruntime import OnnxRuntimeBackend

    graph, used, props = prepare_onnx(path, convention)  # our NCHW RGB 0..255, adapted in the graph if need be
    if precision == "fp16" and props.get("stylize.supports_half") == "False":
        warnings.warn(f"{props.get('stylize.arch', path.name)} does not support FP16 (spandrel: supports_half=False); "
                      f"running in FP32", stacklevel=3)
        precision = "fp32"
    backend = OnnxRuntimeBackend(path, device, precision, provider=ort_provider, model_bytes=graph)
    backend.convention = used  # type: ignore[attr-defined] - printed in the summary
    if used.source != "stylize.* metadata" and (convention is None or convention.value_range is None):
        from stylize_video.pipeline.value_range_check import check_assumed_value_range

        try:  # 0..255 is only assumed: a 0..1 model would write a black video
            check_assumed_value_range(backend, path.name)
        except BaseException:
            backend.close()
            raise
    return backend


def _tensorrt(path: Path, device: str, precision: str, compile: bool | str, ort_provider: str | None) -> Backend:
    from stylize_video.pipeline.backends.tensorrt import TensorRTBackend

    return TensorRTBackend(path, device)


LOADERS: dict[str, Callable[..., Backend]] = {
    "torch": _torch, "onnxruntime": _onnxruntime, "tensorrt": _tensorrt,
}


def load_backend(model: str | os.PathLike[str], backend: str = "auto", device: str = "auto", precision: str = "fp16",
                 compile: bool | str = False, ort_provider: str | None = None,
                 convention: ConventionFlags | None = None, tile: TileOptions | None = None) -> Backend:
    """Load ``model`` with ``backend`` ("auto" picks by file kind) on ``device`` ("auto", "cuda", "cpu").

    ``precision`` "fp16" applies where the backend can choose it (torch: FP16 weights with FP32
    norms; ORT TensorRT EP: FP16 kernels); a TensorRT engine computes in the precision it was built
    with. ``compile``: torch.compile (torch backend only): True, or a mode name from
    ``stylize_video.pipeline.backends.torch.COMPILE_MODES``. ``ort_provider`` ("tensorrt", "cuda",
    "cpu"): pin ONNX Runtime to one execution provider instead of the best available.
    ``convention``: the I/O convention of an ONNX file without our metadata (``stylize_video.export.conventions``).
    ``tile``: run frames in overlapping tiles (``stylize_video.pipeline.tiling``).

    The result applies the model's size rules (``stylize_video.pipeline.sizing.SizedBackend``): any frame size
    >= 1x1 goes in, padded to what the network needs, and the output is cropped back.
    """
    if backend not in BACKENDS:
        raise StylizeError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in ("fp16", "fp32"):
        raise StylizeError(f"precision must be fp16 or fp32, got {precision!r}")
    path = Path(model)
    kind = model_kind(path)
    name = DEFAULT_BACKEND[kind] if backend == "auto" else backend
    if kind not in ACCEPTS[name]:
        hint = DEFAULT_BACKEND[kind]
        raise StylizeError(f"--backend {name} cannot run {path.name} (a {kind} file); use --backend {hint} or auto")
    if compile and name != "torch":
        raise StylizeError("--compile applies to the torch backend only")
    if ort_provider is not None and name != "onnxruntime":
        raise StylizeError("an ONNX Runtime provider applies to the onnxruntime backend only")
    given = convention.given() if convention is not None else {}
    if given and kind != "onnx":
        raise StylizeError(f"{', '.join('--' + k.replace('_', '-') for k in given)}: for --onnx models only; "
                           f"a {kind} runs in stylize-video's own convention (NCHW RGB 0..255)")
    extra = {"convention": convention} if name == "onnxruntime" else {}
    loaded = LOADERS[name](path, device, precision, compile, ort_provider, **extra)
    try:
        from stylize_video.pipeline.sizing import with_size_rules
        from stylize_video.pipeline.tiling import TiledBackend

        return TiledBackend(loaded, tile) if tile is not None else with_size_rules(loaded)
    except BaseException:
        loaded.close()
        raise


__all__ = ["ACCEPTS", "BACKENDS", "Backend", "load_backend", "model_kind"]
