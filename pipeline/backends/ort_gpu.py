"""ONNX Runtime on CUDA without host syncs: its own compute stream, event ordering, explicit TensorRT profiles.

By default ``Session::Run`` synchronises every execution provider at its end, and the backend used to
synchronise the caller's stream before it: two host syncs per frame (issue 12). Here:

* ORT's CUDA / TensorRT EP compute on a stream we create (provider option ``user_compute_stream``,
  ORT >= 1.17 Python API; torch's default stream is handle 0, which ORT treats as "none", hence a
  stream of our own), and ``Run`` does not synchronise (run option
  ``disable_synchronize_execution_providers=1``, onnxruntime_run_options_config_keys.h).
* ``OrtCudaRunner.run`` orders with events only: ORT's stream waits for the caller's stream (the
  input is ready), and the caller's stream waits for ORT's (the output is ready). The host never blocks.
* TensorRT EP: explicit ``trt_profile_min/opt/max_shapes`` from the export stage's shape profiles
  (``stylize_video.export.shapes``), so a new frame size inside the profile reuses the engine instead of
  rebuilding it (minutes at 4K); FP16 comes from the mixed-FP16 graph (``export.fp16.to_mixed_fp16``,
  norms in FP32), not from ``trt_fp16_enable``, which TensorRT 11 no longer has.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

# onnxruntime_run_options_config_keys.h: kOrtRunOptionsConfigDisableSynchronizeExecutionProviders
DISABLE_SYNC_KEY = "disable_synchronize_execution_providers"


def stream_options(stream_handle: int) -> dict[str, str]:
    """CUDA / TensorRT EP provider options that make ORT compute on ``stream_handle`` (a cudaStream_t)."""
    if not stream_handle:
        raise ValueError("ORT treats stream 0 as no stream: pass a non-default CUDA stream")
    return {"has_user_compute_stream": "1", "user_compute_stream": str(int(stream_handle))}


def trt_profile_options(input_name: str, profile: Any) -> dict[str, str]:
    """``trt_profile_*_shapes`` for one NCHW input from a ``ShapeProfile`` (format ``name:1x3xHxW``)."""
    mn, opt, mx = profile.nchw()
    fmt = lambda shape: f"{input_name}:{'x'.join(str(d) for d in shape)}"
    return {"trt_profile_min_shapes": fmt(mn), "trt_profile_opt_shapes": fmt(opt), "trt_profile_max_shapes": fmt(mx)}


def onnx_input_and_profile(path: str | os.PathLike[str]) -> tuple[str, Any, bool]:
    """(input name, default ``ShapeProfile`` for the model's task/scale, whether the graph is FP16) of an ONNX file.

    Models without our metadata get the style profile (64x64 .. 3840x3840), which covers any frame
    a style network is given; an SR model without metadata gets it too (larger than it needs, still valid).
    """
    import onnx
    from stylize_video.errors import StylizeError
    from stylize_video.export.fp16 import is_fp16_graph
    from stylize_video.export.metadata import read_metadata
    from stylize_video.export.shapes import default_profile

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in inits)
    try:
        meta = read_metadata(model)
        profile = default_profile(meta.task, int(meta.scale))
    except StylizeError:
        profile = default_profile("style", 1)
    return name, profile, is_fp16_graph(model)


def mixed_fp16_model(path: str | os.PathLike[str]) -> bytes:
    """The FP32 graph at ``path`` as the mixed-FP16 graph ``stylize-export onnx --fp16`` writes (FP32 I/O)."""
    import onnx
    from stylize_video.export.fp16 import to_mixed_fp16

    return to_mixed_fp16(onnx.load(str(Path(path)))).SerializeToString()


class OrtCudaRunner:
    """Runs an ``InferenceSession``'s IOBinding on ORT's own CUDA stream, ordered against the caller's by events."""

    def __init__(self, device: torch.device, stream: Any | None = None) -> None:
        import onnxruntime as ort

        self.device = device
        self.stream = stream if stream is not None else torch.cuda.Stream(device)
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry(DISABLE_SYNC_KEY, "1")

    @property
    def provider_options(self) -> dict[str, str]:
        return stream_options(self.stream.cuda_stream)

    def run(self, session: Any, binding: Any, caller: Any) -> None:
        """Queue ``session`` on ORT's stream after ``caller``'s queued work; ``caller`` then waits for it."""
        self.stream.wait_stream(caller)  # the bound input was written on the caller's stream
        session.run_with_iobinding(binding, self.run_options)  # returns once queued: no EP synchronise
        caller.wait_stream(self.stream)  # the bound output is read on the caller's stream
