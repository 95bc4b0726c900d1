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
import warnings
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import onnx
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import (
    BuildOptions,
    EngineMeta,
    RuntimeEnv,
    check_compatible,
    read_meta,
    write_meta,
)
from stylize_video.export.fp16 import NORMALISATION_OPS, io_dtype, is_fp16_graph, to_mixed_fp16
from stylize_video.export.metadata import file_sha256, read_metadata
from stylize_video.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from stylize_video.export.shapes import ShapeProfile

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
        raise StylizeError("TensorRT is not installed: pip install 'stylize-video[tensorrt]' (x86-64 + CUDA), "
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
    tmp = path.with_name(path.name + ".partial")
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
                      onnx_sha256=file_sha256(onnx_path), onnx_path=str(onnx_path), build=build)
    write_meta(plan_path, meta)
    return meta


class TensorRTRunner:
    """Run a ``.plan`` on torch CUDA tensors.

    Usage::

        with TensorRTRunner("mosaic.plan") as run:   # checks OUT.plan.json against this GPU/TensorRT
            y = run(x)                                # x: (N, 3, H, W) CUDA, float32 or float16, RGB 0..255
            y = run(x, stream=torch.cuda.Stream())    # enqueue on a given stream (default: current stream)

    * Output: (N, 3, H*scale, W*scale) CUDA tensor in the engine's output dtype (``output_dtype``), 0..255,
      not clamped; a fresh tensor each call, produced asynchronously on ``stream``.
    * Input is cast to the engine's input dtype (``input_dtype``) and made contiguous.
    * A new input shape triggers ``set_input_shape``; shapes outside the profile are refused with the
      rebuild command.
    * ``cuda_graph=True`` captures a CUDA graph for the current input shape (after one warm-up enqueue) and
      replays it; a new shape drops it and captures again (a graph is only valid for the context state it
      was captured with, and ``set_input_shape`` changes that state). Where capture fails (an engine whose
      enqueue cannot be captured), it warns once and runs plain ``execute_async_v3`` from then on.
    * The graph's static buffers are shared by every call: each replay records an event, and the next
      call's stream waits for it before writing the static input, so a replay still reading it (or a
      copy of the static output still pending) on another stream is never overwritten.
    * ``set_tensor_address`` returning False (misaligned or wrong-size memory) is an error, not ignored.
    * Leaving the ``with`` block synchronises the device before the context is destroyed (work may still
      be queued on the caller's streams).
    * With a ``stream`` other than the current one, the call waits for the current stream first (that
      is where ``x`` was made) and marks ``x`` as used on ``stream``; the caller waits for ``stream``
      before reading the output on another stream.
    """

    def __init__(self, plan: str | os.PathLike[str], *, device: int = 0, cuda_graph: bool = False,
                 check: bool = True) -> None:
        self.plan = Path(plan)
        self.device = torch.device("cuda", device)
        self.cuda_graph = cuda_graph
        self.check = check
        self.meta = read_meta(self.plan)
        self.input_dtype = torch.float16 if self.meta.input_dtype == "float16" else torch.float32
        self.output_dtype = torch.float16 if self.meta.output_dtype == "float16" else torch.float32
        self._trt: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._shape: tuple[int, ...] | None = None
        # (input shape, graph, static input, static output) for the context's current shape, or None
        self._graph: tuple[tuple[int, ...], torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor] | None = None
        self._replayed: Any = None  # torch.cuda.Event recorded after the last replay (and its output copy)

    def __enter__(self) -> TensorRTRunner:  # noqa: PYI034 (Self needs Python 3.11; we support 3.10)
        trt = self._trt = load_tensorrt()
        if self.check:
            check_compatible(self.meta, probe_env(trt, self.device.index or 0), self.plan)
        runtime = trt.Runtime(_logger(trt))
        if self.meta.build.version_compatible:
            runtime.engine_host_code_allowed = True  # version-compatible plans carry their lean runtime
        with torch.cuda.device(self.device):
            self._engine = runtime.deserialize_cuda_engine(self.plan.read_bytes())
            if self._engine is None:
                raise StylizeError(f"TensorRT could not deserialize {self.plan}; rebuild it with: "
                                   f"{self.meta.rebuild_command(self.plan)}")
            self._context = self._engine.create_execution_context()
        self._runtime = runtime
        self._shape = None  # a fresh context has no input shape yet
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        if sorted(names) != sorted([INPUT_NAME, OUTPUT_NAME]):
            raise StylizeError(f"{self.plan} has I/O tensors {names}, expected {INPUT_NAME!r} and {OUTPUT_NAME!r}")
        self.input_dtype = _torch_dtype(trt, self._engine.get_tensor_dtype(INPUT_NAME))
        self.output_dtype = _torch_dtype(trt, self._engine.get_tensor_dtype(OUTPUT_NAME))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._context is not None:
            # Queued enqueues/replays may still use the context's memory: finish them before destroying it.
            torch.cuda.synchronize(self.device)
        self._graph = None  # before the context whose memory it replays into
        self._replayed = None
        self._shape = None
        self._context = self._engine = self._runtime = None  # assigned left to right: context, engine, runtime

    def _set_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if shape != self._shape:
            if not self.meta.profile.contains(shape):
                check_compatible(self.meta, RuntimeEnv(self.meta.tensorrt_version, self.meta.gpu_name,
                                                       self.meta.compute_capability), self.plan, shape)
            if not self._context.set_input_shape(INPUT_NAME, shape):
                raise StylizeError(f"TensorRT rejected input shape {shape} for {self.plan}")
            self._shape = shape
            self._graph = None  # captured for the old shape's context state: replaying it now is undefined
        return tuple(self._context.get_tensor_shape(OUTPUT_NAME))

    def _enqueue(self, x: torch.Tensor, out: torch.Tensor, stream: torch.cuda.Stream) -> None:
        for name, tensor in ((INPUT_NAME, x), (OUTPUT_NAME, out)):
            # False: TensorRT refused the pointer (alignment, size); enqueueing anyway would run on stale memory.
            if not self._context.set_tensor_address(name, tensor.data_ptr()):
                raise StylizeError(f"TensorRT refused the address of {name!r} {tuple(tensor.shape)} for {self.plan}")
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execute_async_v3 failed for {self.plan}")

    def __call__(self, x: torch.Tensor, stream: torch.cuda.Stream | None = None) -> torch.Tensor:
        if self._context is None:
            raise RuntimeError("TensorRTRunner must be used inside a `with` block")
        if not x.is_cuda or x.dim() != 4 or x.shape[1] != 3:
            raise StylizeError(f"TensorRTRunner expects a CUDA (N, 3, H, W) tensor, got {tuple(x.shape)} on {x.device}")
        caller = torch.cuda.current_stream(self.device)
        stream = stream or caller
        with torch.cuda.device(self.device):
            if stream != caller:
                stream.wait_stream(caller)  # x (and anything it depends on) was queued on the caller's stream
                x.record_stream(stream)  # ... and must not be recycled before ``stream`` has read it
        with torch.cuda.device(self.device), torch.cuda.stream(stream):
            x = x.to(self.device, self.input_dtype).contiguous()
            if x.data_ptr() % TENSOR_ALIGNMENT:  # a view into a batch, say: setTensorAddress refuses it
                x = x.clone()
            out_shape = self._set_shape(tuple(x.shape))
            if not self.cuda_graph:
                out = torch.empty(out_shape, dtype=self.output_dtype, device=self.device)
                self._enqueue(x, out, stream)
                return out
            return self._replay(x, out_shape, stream)

    def _replay(self, x: torch.Tensor, out_shape: tuple[int, ...], stream: torch.cuda.Stream) -> torch.Tensor:
        key = tuple(x.shape)
        if self._graph is None or self._graph[0] != key:
            try:
                self._graph = self._capture(x, out_shape, stream)
            except Exception as exc:  # noqa: BLE001 - any capture failure: plain enqueue still computes the same
                warnings.warn(f"TensorRT: CUDA graph capture failed for {self.plan} ({type(exc).__name__}: "
                              f"{str(exc).strip()[:160]}); running without CUDA graphs", stacklevel=3)
                self.cuda_graph = False
                self._graph = None
                out = torch.empty(out_shape, dtype=self.output_dtype, device=self.device)
                self._enqueue(x, out, stream)
                return out
        _, graph, static_in, static_out = self._graph
        if self._replayed is not None:
            stream.wait_event(self._replayed)  # the previous replay (any stream) is done with the static buffers
        static_in.copy_(x)
        graph.replay()  # launched on the current stream, i.e. ``stream``
        y = static_out.clone()  # the static buffer is overwritten by the next replay
        if self._replayed is None:
            self._replayed = torch.cuda.Event()
        self._replayed.record(stream)
        return y

    def _capture(self, x: torch.Tensor, out_shape: tuple[int, ...],
                 stream: torch.cuda.Stream) -> tuple[tuple[int, ...], torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        """(shape, graph, static input, static output) captured for ``x``'s shape; raises where capture fails."""
        static_in = x.clone()
        static_out = torch.empty(out_shape, dtype=self.output_dtype, device=self.device)
        # One plain enqueue flushes TensorRT's deferred state updates (new shape, addresses); then sync,
        # as the TensorRT developer guide and vs-mlrt do before capturing.
        self._enqueue(static_in, static_out, stream)
        stream.synchronize()
        # Capture needs a non-default stream; replay then runs on ``stream`` (the current one).
        # "relaxed" (vs-mlrt captures TensorRT the same way): CUDA calls made meanwhile by other threads
        # (decode, pinned allocations) or lazily inside TensorRT do not abort the capture.
        capture = torch.cuda.Stream(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=capture, capture_error_mode="relaxed"):
            self._enqueue(static_in, static_out, capture)
        return tuple(x.shape), graph, static_in, static_out
