"""``TensorRTRunner``: run a ``.plan`` on torch CUDA tensors (``execute_async_v3``, CUDA graph per shape).

TensorRT itself is reached only through ``stylize_video.export.tensorrt`` (``load_tensorrt``), the one
module that imports it. API pages: IExecutionContext
(https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ExecutionContext.html):
``set_input_shape``, ``set_tensor_address`` (returns bool), ``execute_async_v3(stream_handle)``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import RuntimeEnv, check_compatible, read_meta
from stylize_video.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from stylize_video.export.tensorrt import TENSOR_ALIGNMENT, _logger, _torch_dtype, load_tensorrt, probe_env


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
    * ``cuda_graph=True`` captures a CUDA graph per input shape (after one warm-up enqueue) and replays it; a
      new shape captures again (``set_input_shape`` changes the context state a graph was captured with).
      If capture fails, it warns once and runs plain ``execute_async_v3`` from then on. Each replay records
      an event that the next call's stream waits for before writing the shared static input (a replay on
      another stream may still read it, or its output copy be pending).
    * ``set_tensor_address`` returning False is an error; leaving the ``with`` block synchronises the device
      before the context is destroyed (work may still be queued on the caller's streams).
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
        # One plain enqueue flushes TensorRT's deferred state updates, then sync (TensorRT guide, vs-mlrt).
        self._enqueue(static_in, static_out, stream)
        stream.synchronize()
        # A non-default capture stream; "relaxed" as vs-mlrt: CUDA calls by other threads (decode, pinned
        # allocations) or lazily inside TensorRT do not abort the capture. Replays run on ``stream``.
        capture = torch.cuda.Stream(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=capture, capture_error_mode="relaxed"):
            self._enqueue(static_in, static_out, capture)
        return tuple(x.shape), graph, static_in, static_out
