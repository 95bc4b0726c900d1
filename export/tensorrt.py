"""TensorRT engine builder and runner: the ONLY module that imports ``tensorrt`` (lazily, inside functions).

Version gates live in :func:`typing_mode` and :func:`precision_constraint_flag`; they look at the
module's version string and at which names it exposes, so tests drive them with fake modules.
Names per version, read with ``strings`` from the official bindings wheels (tensorrt.so):

==============================  ==========  ===========  ===========
name                            10.3.0      10.13.3.9    11.4.0.106
==============================  ==========  ===========  ===========
BuilderFlag.FP16                yes         yes          no
OBEY/PREFER_PRECISION_CONSTR.   yes         yes          no
NetworkDefinitionCreationFlag   STRONGLY_TYPED in all three (ignored in 11: always strong)
HardwareCompatibilityLevel      AMPERE_PLUS AMPERE_PLUS, SAME_COMPUTE_CAPABILITY (10.13, 11.4)
ILayer.set_output_type          yes         yes          no
execute_async_v3, set_input_shape, set_tensor_address, create_timing_cache: all three
==============================  ==========  ===========  ===========

API pages used (TensorRT Python API):
* Builder / NetworkDefinitionCreationFlag:
  https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html (10.x) and
  https://docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/infer/Core/Builder.html (11: STRONGLY_TYPED
  "Deprecated ... always enabled ... retained for API compatibility but is ignored")
* IBuilderConfig: https://docs.nvidia.com/deeplearning/tensorrt/api/python_api/infer/Core/BuilderConfig.html
* ITimingCache: https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/TimingCache.html
* OnnxParser: https://docs.nvidia.com/deeplearning/tensorrt/api/python_api/parsers/Onnx/pyOnnx.html
* Runtime (engine_host_code_allowed): https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Runtime.html
* IExecutionContext: https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ExecutionContext.html
* 10.x -> 11.x: https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-patterns.html
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import onnx
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import (
    BuildOptions,
    EngineMeta,
    RuntimeEnv,
    check_build_fits,
    write_meta,
)
from stylize_video.export.fp16 import NORMALISATION_OPS, io_dtype, is_fp16_graph, to_mixed_fp16
from stylize_video.export.metadata import file_sha256, read_metadata
from stylize_video.export.onnx_export import INPUT_NAME
from stylize_video.export.shapes import ShapeProfile
from stylize_video.outfiles import partial_path

MIN_VERSION = (10, 0)
# IExecutionContext::setTensorAddress: "The pointer must have at least 256-byte alignment" (NvInferRuntime.h).
TENSOR_ALIGNMENT = 256
# Weak typing was deprecated in 10.12; from there on, strongly typed builds of an FP16 ONNX are the norm.
STRONG_BY_DEFAULT_FROM = (10, 12)


def load_tensorrt() -> ModuleType:
    """Import ``tensorrt`` or raise a one-line ``StylizeError`` saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError:
        raise StylizeError("TensorRT is not installed: pip install tensorrt (x86-64 + CUDA; in a checkout: "
                           "pip install -e '.[tensorrt]'), "
                           "or on Jetson use JetPack's python3-libnvinfer") from None
    return trt


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _has(obj: Any, *names: str) -> bool:
    for name in names:
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def typing_mode(trt: Any, requested: str = "auto") -> str:
    """``"strong"`` (FP16 comes from the ONNX graph) or ``"weak"`` (FP16 builder flag + FP32 pins).

    * 11.x: always strong (weak typing APIs were removed);
    * 10.12+: strong by default, weak on request;
    * 10.0-10.11 (JetPack 6 ships 10.3): weak by default, strong on request where STRONGLY_TYPED exists.
    """
    version = version_tuple(trt.__version__)
    if version[:2] < MIN_VERSION:
        raise StylizeError(f"TensorRT {trt.__version__} is too old: need >= {'.'.join(map(str, MIN_VERSION))}")
    has_strong = _has(trt, "NetworkDefinitionCreationFlag", "STRONGLY_TYPED") or version[0] >= 11
    has_weak = _has(trt, "BuilderFlag", "FP16")
    if requested not in ("auto", "strong", "weak"):
        raise StylizeError(f"--typing must be auto, strong or weak, got {requested!r}")
    if requested == "auto":
        requested = "strong" if (version[:2] >= STRONG_BY_DEFAULT_FROM and has_strong) or not has_weak else "weak"
    if requested == "weak" and not has_weak:
        raise StylizeError(f"TensorRT {trt.__version__} has no weak typing (BuilderFlag.FP16 was removed in 11); "
                           "use --typing strong (the default)")
    if requested == "strong" and not has_strong:
        raise StylizeError(f"TensorRT {trt.__version__} has no strongly typed networks; use --typing weak")
    return requested


def network_flags(trt: Any, mode: str) -> int:
    """``create_network`` flags: STRONGLY_TYPED for strong mode where the enum still has it (ignored in 11)."""
    if mode == "strong" and _has(trt, "NetworkDefinitionCreationFlag", "STRONGLY_TYPED"):
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def precision_constraint_flag(trt: Any) -> Any | None:
    """OBEY_PRECISION_CONSTRAINTS (10.x) or PREFER_... ; None on 11.x where both were removed."""
    for name in ("OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"):
        if _has(trt, "BuilderFlag", name):
            return getattr(trt.BuilderFlag, name)
    return None


def hardware_compat_level(trt: Any) -> Any:
    if not _has(trt, "HardwareCompatibilityLevel", "AMPERE_PLUS"):
        raise StylizeError(f"TensorRT {trt.__version__} cannot build hardware-compatible engines")
    return trt.HardwareCompatibilityLevel.AMPERE_PLUS


def probe_env(trt: Any | None = None, device: int = 0) -> RuntimeEnv:
    """TensorRT version, GPU name and compute capability of this machine (needs CUDA)."""
    trt = trt or load_tensorrt()
    if not torch.cuda.is_available():
        raise StylizeError("no CUDA device: TensorRT engines need an NVIDIA GPU")
    return RuntimeEnv(str(trt.__version__), torch.cuda.get_device_name(device),
                      tuple(torch.cuda.get_device_capability(device)))  # type: ignore[arg-type]


_LOGGERS: dict[int, Any] = {}


def _logger(trt: Any) -> Any:
    """One WARNING-level logger per tensorrt module, kept alive for as long as runtimes/engines may use it."""
    if id(trt) not in _LOGGERS:
        _LOGGERS[id(trt)] = trt.Logger(trt.Logger.WARNING)
    return _LOGGERS[id(trt)]


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16}
    if dtype not in table:
        raise StylizeError(f"engine I/O type {dtype} is not supported (float32 or float16 only)")
    return table[dtype]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = partial_path(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pin_normalisation_fp32(trt: Any, network: Any) -> int:
    """Weak typing only: keep normalisation layers (and their outputs) in FP32 under the FP16 flag."""
    pinned = 0
    norm_type = getattr(trt.LayerType, "NORMALIZATION", None)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == norm_type or any(op in layer.name for op in NORMALISATION_OPS):
            layer.precision = trt.float32
            for k in range(layer.num_outputs):
                layer.set_output_type(k, trt.float32)
            pinned += 1
    return pinned


def build_engine(onnx_path: str | os.PathLike[str], plan_path: str | os.PathLike[str], profile: ShapeProfile,
                 build: BuildOptions, *, log: Any = print) -> EngineMeta:
    """Build ``plan_path`` (+ ``plan_path.json``) from an ONNX exported by ``stylize-export onnx``.

    Strong typing: FP16 comes from the graph. An FP32 ONNX is converted in memory with the same
    mixed-precision pass as ``stylize-export onnx --fp16`` (InstanceNormalization stays FP32).
    Weak typing (TensorRT < 10.12): FP32 ONNX + BuilderFlag.FP16 with normalisation layers pinned to FP32.
    Builds on the current CUDA device (``with torch.cuda.device(n):`` picks another, as ``--device cuda:N``).
    """
    trt = load_tensorrt()
    env = probe_env(trt, torch.cuda.current_device() if torch.cuda.is_available() else 0)  # TensorRT builds there
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    src_meta = read_metadata(onnx_path)
    check_build_fits(src_meta, profile, build)
    mode = typing_mode(trt, build.typing)
    model = onnx.load(str(onnx_path))
    if is_fp16_graph(model):
        if mode == "weak":
            raise StylizeError(f"{onnx_path} is already FP16; weakly typed builds (TensorRT {trt.__version__}) need "
                               "the FP32 export: run `stylize-export onnx` without --fp16 and pass --fp16 here")
        build.precision = "fp16"
        build.fp16_io = io_dtype(model) == "float16"
    elif build.precision == "fp16" and mode == "strong":
        model = to_mixed_fp16(model, fp16_io=build.fp16_io)

    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, mode))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise StylizeError(f"TensorRT could not parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    if build.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(build.workspace_mib) << 20)
    if build.builder_optimization_level is not None:
        config.builder_optimization_level = int(build.builder_optimization_level)
    if build.hardware_compatible:
        config.hardware_compatibility_level = hardware_compat_level(trt)
    if build.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if mode == "weak" and build.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        flag = precision_constraint_flag(trt)
        if flag is not None:
            config.set_flag(flag)
        log(f"weak typing: FP16 flag, {_pin_normalisation_fp32(trt, network)} normalisation layers pinned to FP32")
        if build.fp16_io:
            network.get_input(0).dtype = trt.float16
            network.get_output(0).dtype = trt.float16

    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, *profile.nchw())
    config.add_optimization_profile(opt_profile)

    cache = None
    if build.timing_cache:  # reused when present, written back (updated) after the build
        cache_path = Path(build.timing_cache)
        blob = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, False)

    log(f"building {plan_path} with TensorRT {trt.__version__} ({mode} typing, {build.precision}) on {env.gpu_name}")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StylizeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(plan_path, bytes(serialized))
    if cache is not None:
        _atomic_write(Path(build.timing_cache), bytes(cache.serialize()))  # type: ignore[arg-type]

    in_dt = "float16" if network.get_input(0).dtype == trt.float16 else "float32"
    out_dt = "float16" if network.get_output(0).dtype == trt.float16 else "float32"
    meta = EngineMeta(tensorrt_version=env.tensorrt_version, gpu_name=env.gpu_name,
                      compute_capability=env.compute_capability, profile=profile, precision=build.precision,
                      typing=mode, task=src_meta.task, scale=src_meta.scale, input_dtype=in_dt, output_dtype=out_dt,
                      onnx_sha256=file_sha256(onnx_path), onnx_path=str(onnx_path), build=build,
                      size_rules=src_meta.size_rules.to_dict(), value_range=src_meta.value_range,
                      layout=src_meta.layout, channel_order=src_meta.channel_order)
    write_meta(plan_path, meta)
    return meta


# The runner lives in its own module (one concept per file); it imports nothing from tensorrt itself.
from stylize_video.export.tensorrt_runner import TensorRTRunner

__all__ = ["TensorRTRunner", "build_engine", "load_tensorrt", "probe_env", "typing_mode"]
