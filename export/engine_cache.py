"""On-disk cache of TensorRT engines, keyed like vs-mlrt's engine paths.

Location: ``$STYLIZE_CACHE/engines`` if set, else ``~/.cache/stylize-video/engines``. An engine's file
name encodes everything that makes it (in)valid here: the ONNX content hash, the shape profile, the
precision, the TensorRT version and the GPU name. No ``tensorrt`` import: the builder is passed in
(default: :func:`stylize_video.export.tensorrt.build_engine`, imported only when a build is needed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import BuildOptions, EngineMeta, RuntimeEnv, check_compatible, read_meta
from stylize_video.export.shapes import ShapeProfile

Builder = Callable[[Path, Path, ShapeProfile, BuildOptions], EngineMeta]


def cache_root() -> Path:
    """The cache root (``$STYLIZE_CACHE`` or ``~/.cache/stylize-video``)."""
    env = os.environ.get("STYLIZE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stylize-video"


def engine_dir() -> Path:
    return cache_root() / "engines"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


def engine_key(onnx_sha256: str, profile: ShapeProfile, build: BuildOptions, env: RuntimeEnv) -> str:
    """File-name-safe key, e.g. ``1a2b3c4d5e6f7a8b_64x64-1080x1920-3840x3840_fp16_trt10.13.3.9_nvidia-h100``.

    Everything that changes the engine is in it: ONNX content, profile, precision and I/O dtype, the
    compatibility modes, the optimisation level, TensorRT version and GPU name.
    """
    parts = [onnx_sha256[:16], profile.describe(), build.precision + ("-io16" if build.fp16_io else "")]
    if build.builder_optimization_level is not None:
        parts.append(f"opt{build.builder_optimization_level}")
    if build.hardware_compatible:
        parts.append("hwcompat")
    if build.version_compatible:
        parts.append("vercompat")
    if build.typing != "auto":
        parts.append(build.typing)
    parts += [f"trt{_slug(env.tensorrt_version)}", _slug(env.gpu_name)]
    return "_".join(parts)


def engine_path(onnx_path: str | os.PathLike[str], profile: ShapeProfile, build: BuildOptions, env: RuntimeEnv,
                root: Path | None = None) -> Path:
    from stylize_video.export.metadata import file_sha256  # onnx + torch: not for cache_root's callers

    onnx_path = Path(onnx_path)
    key = engine_key(file_sha256(onnx_path), profile, build, env)
    return (root or engine_dir()) / f"{_slug(onnx_path.stem)}_{key}.plan"


def _default_builder(onnx_path: Path, plan: Path, profile: ShapeProfile, build: BuildOptions) -> EngineMeta:
    from stylize_video.export.tensorrt import build_engine

    return build_engine(onnx_path, plan, profile, build)


def _default_env() -> RuntimeEnv:
    from stylize_video.export.tensorrt import probe_env

    return probe_env()


def get_or_build(onnx_path: str | os.PathLike[str], profile: ShapeProfile, precision: str = "fp16", *,
                 build: BuildOptions | None = None, env: RuntimeEnv | None = None,
                 builder: Builder | None = None, root: Path | None = None) -> Path:
    """Path of a cached engine for (ONNX, profile, precision, TensorRT, GPU), building it on a miss.

    A cached plan whose sidecar is missing, unreadable or does not match this machine is rebuilt.
    ``env``/``builder`` default to probing TensorRT + CUDA and :func:`stylize_video.export.tensorrt.build_engine`.
    """
    from stylize_video.export.metadata import file_sha256

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise StylizeError(f"ONNX model not found: {onnx_path}")
    if precision not in ("fp16", "fp32"):
        raise StylizeError(f"precision must be fp16 or fp32, got {precision!r}")
    build = replace(build or BuildOptions(), precision=precision)
    env = env or _default_env()
    plan = engine_path(onnx_path, profile, build, env, root)
    if plan.is_file():
        try:
            meta = read_meta(plan)
            check_compatible(meta, env, plan)
            if meta.onnx_sha256 == file_sha256(onnx_path) and meta.profile == profile:
                return plan
        except StylizeError:
            pass  # stale or damaged entry: rebuild below
    plan.parent.mkdir(parents=True, exist_ok=True)
    (builder or _default_builder)(onnx_path, plan, profile, build)
    if not plan.is_file():
        raise StylizeError(f"engine build reported success but {plan} was not written")
    return plan
