"""ONNX Runtime backend for any image-to-image ONNX model with NCHW RGB 0..255 float I/O.

Execution providers by preference: TensorRT EP -> CUDA EP -> CPU EP (those this onnxruntime build
has). On CUDA, inputs and outputs stay on the GPU: torch tensors are bound with IOBinding, so there
is no host round trip. The scale and size rules come from our ``metadata_props`` when present, else from
probe runs (``stylize_video.pipeline.sizing.probe_onnx_session``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.backends.torch import resolve_device
from stylize_video.sizerules import SizeRules

_PROVIDER_SHORT = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda",
                   "CPUExecutionProvider": "cpu"}
_NP_OF_ORT = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_TORCH_OF_ORT = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16}


def metadata_scale(meta: dict[str, str]) -> int | None:
    """Scale recorded by the exporter (any ``...scale`` key holding an integer), else None."""
    for key, value in meta.items():
        if re.search(r"(^|[._])scale$", key) and str(value).strip().isdigit():
            return int(value)
    return None


_PROVIDER_LONG = {short: long for long, short in _PROVIDER_SHORT.items()}


def trt_cache_dir(cache_dir: Path, precision: str) -> Path:
    """Where the TensorRT EP keeps engines for ``precision`` (its cache names do not say FP16 or FP32)."""
    return cache_dir / precision


def providers_for(device: torch.device, precision: str, available: list[str], cache_dir: Path,
                  only: str | None = None, stream: dict[str, str] | None = None,
                  trt_profile: dict[str, str] | None = None) -> list:
    """Provider list, best first, restricted to what this build has, to ``device`` and to ``only``.

    ``stream``: the CUDA/TensorRT EP options that set ORT's compute stream (``ort_gpu.stream_options``);
    ``trt_profile``: the TensorRT EP's explicit shape profile (``ort_gpu.trt_profile_options``). No
    ``trt_fp16_enable``: FP16 comes from the mixed-FP16 graph the backend feeds (TensorRT 11 has no
    such flag).
    """
    if only is not None:
        if only not in _PROVIDER_LONG:
            raise StylizeError(f"unknown onnxruntime provider {only!r}; choose one of {', '.join(_PROVIDER_LONG)}")
        if (only == "cpu") != (device.type != "cuda"):
            raise StylizeError(f"onnxruntime provider {only} does not run on device {device.type}")
        if _PROVIDER_LONG[only] not in available:
            raise StylizeError(f"this onnxruntime has no {_PROVIDER_LONG[only]}")
        available = [_PROVIDER_LONG[only]]
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    idx = device.index or 0
    wanted: list = []
    if "TensorrtExecutionProvider" in available:
        wanted.append(("TensorrtExecutionProvider", {
            "device_id": idx,
            # Cached engines are keyed by the model only, not by precision: one folder per precision.
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache_dir(cache_dir, precision)),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache_dir),
            **(trt_profile or {}), **(stream or {})}))
    if "CUDAExecutionProvider" in available:
        # The CUDA EP defaults to TF32 convolutions; FP32 must mean FP32 (also for the baseline rows).
        wanted.append(("CUDAExecutionProvider", {"device_id": idx, "use_tf32": int(precision != "fp32"),
                                                 **(stream or {})}))
    if not wanted:
        raise StylizeError("this onnxruntime has no CUDA provider; install onnxruntime-gpu or use --device cpu")
    return wanted if only is not None else [*wanted, "CPUExecutionProvider"]


class OnnxRuntimeBackend(Backend):
    """An ONNX Runtime session behind the ``Backend`` contract."""

    def __init__(self, path: str | os.PathLike[str], device: str | torch.device = "auto", precision: str = "fp16",
                 cache_dir: str | os.PathLike[str] | None = None, provider: str | None = None,
                 model_bytes: bytes | None = None) -> None:
        """``model_bytes``: the graph to run instead of the file's (``path`` still names it in messages), e.g.
        one adapted to our I/O convention by ``stylize_video.export.conventions``."""
        import onnxruntime as ort  # heavy; only when this backend is used

        path = Path(path)
        self.device = resolve_device(device)
        self.precision = precision
        cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "stylize-video" / "ort-trt"
        if self.device.type == "cuda":
            trt_cache_dir(cache, precision).mkdir(parents=True, exist_ok=True)
        available = ort.get_available_providers()
        model: str | bytes = str(path)
        self._cuda = None
        stream, profile = None, None
        if self.device.type == "cuda":
            from stylize_video.pipeline.backends import ort_gpu

            self._cuda = ort_gpu.OrtCudaRunner(self.device)  # ORT computes on its own stream, no syncs
            stream = self._cuda.provider_options
            if "TensorrtExecutionProvider" in available and provider in (None, "tensorrt"):
                name, shapes, fp16_graph = ort_gpu.onnx_input_and_profile(path)
                profile = ort_gpu.trt_profile_options(name, shapes)
                if precision == "fp16" and not fp16_graph:
                    model = ort_gpu.mixed_fp16_model(path)  # FP16 from the graph, norms FP32
        providers = providers_for(self.device, precision, available, cache, only=provider, stream=stream,
                                  trt_profile=profile)
        opts = ort.SessionOptions()
        # Fatal only: ORT's own (ANSI-coloured) error log would repeat, unasked, what its exception says, and every
        # exception of a run becomes our one-line error (stylize_video.pipeline.model_failure).
        opts.log_severity_level = 4
        # No busy-waiting between runs: ORT's intra-op threads otherwise spin after each Run and take the
        # cores that decode and x264 need meanwhile (ONNX Runtime "session.intra_op.allow_spinning").
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            # A graph rewritten for another I/O convention (model_bytes) wins over the file / its FP16 version.
            self.session = ort.InferenceSession(model_bytes if model_bytes is not None else model,
                                                sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StylizeError(f"{path} could not be loaded by onnxruntime ({first[:200]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1 or len(inputs[0].shape) != 4:
            raise StylizeError(f"{path} is not an image-to-image model (expects one NCHW input, got "
                               f"{[(i.name, i.shape) for i in inputs]})")
        self._in, self._out = inputs[0], outputs[0]
        if self._in.type not in _NP_OF_ORT:
            raise StylizeError(f"{path}: input type {self._in.type} is not float32/float16")
        self._static_hw = tuple(d if isinstance(d, int) else None for d in self._in.shape[2:])
        self.max_batch = self._in.shape[0] if isinstance(self._in.shape[0], int) else None
        used = self.session.get_providers()[0]
        self.name = f"onnxruntime-{_PROVIDER_SHORT.get(used, used)}"
        if self.device.type == "cuda" and used == "CPUExecutionProvider":
            raise StylizeError("onnxruntime fell back to the CPU provider on a CUDA device; check onnxruntime-gpu")
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        if "TensorrtExecutionProvider" not in self.session.get_providers():
            # Only the TRT EP turns FP16 on by itself; the CUDA/CPU EPs compute in the graph's types,
            # which for our mixed graphs (FP32 I/O) only the exporter's metadata tells.
            mixed = meta.get("stylize.precision", "").startswith("fp16")
            self.precision = "fp16" if mixed or self._in.type == "tensor(float16)" else "fp32"
        self.scale = metadata_scale(meta)
        self.size_rules = SizeRules.from_metadata({k[len("stylize."):]: v for k, v in meta.items()
                                                   if k.startswith("stylize.")})
        if self.scale is None or self.size_rules is None:  # a graph without our metadata: found by running it
            from stylize_video.pipeline.sizing import probe_onnx_session

            self.scale, self.size_rules = probe_onnx_session(self.session, self.scale, self.size_rules)

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise ``StylizeError`` if NCHW inputs of ``shape`` do not fit a fixed-size model (``SizedBackend`` pads
        frames up to its size first: its ``size_rules.fixed``)."""
        for got, want, what in zip(shape[-2:], self._static_hw, ("height", "width")):
            if want is not None and got != want:
                raise StylizeError(f"this ONNX model has a fixed input {what} of {want}, got {got}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(tuple(x.shape))
        dtype = _TORCH_OF_ORT[self._in.type]
        if self.device.type != "cuda":
            feed = x.detach().to("cpu", dtype).contiguous().numpy()
            (y,) = self.session.run([self._out.name], {self._in.name: feed})[:1]
            return torch.from_numpy(np.asarray(y)).float()
        x = x.to(self.device, dtype).contiguous()
        n, _, h, w = x.shape
        s = self.scale or 1
        if self.scale is None:  # probe run: let ORT allocate, then copy back through the host once
            feed = x.cpu().numpy()
            (y,) = self.session.run([self._out.name], {self._in.name: feed})[:1]
            return torch.from_numpy(np.asarray(y)).to(self.device).float()
        y = torch.empty((n, 3, h * s, w * s), dtype=_TORCH_OF_ORT.get(self._out.type, torch.float32), device=self.device)
        binding = self.session.io_binding()
        idx = self.device.index or 0
        binding.bind_input(self._in.name, "cuda", idx, _NP_OF_ORT[self._in.type], tuple(x.shape), x.data_ptr())
        binding.bind_output(self._out.name, "cuda", idx, _NP_OF_ORT.get(self._out.type, np.float32),
                            tuple(y.shape), y.data_ptr())
        # ORT's stream waits for ours (the input), ours for ORT's (the output): events, no host sync.
        self._cuda.run(self.session, binding, torch.cuda.current_stream(self.device))
        return y.float()

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
