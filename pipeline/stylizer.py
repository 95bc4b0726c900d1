"""``Stylizer``: the embeddable Python API — one object that stylizes (or upscales) frames.

    from stylize_video.pipeline import Stylizer
    with Stylizer.load("mosaic.onnx") as stylize:
        out = stylize(frame)          # (H, W, 3) uint8 RGB numpy -> (H*s, W*s, 3) uint8 numpy

Accepted frames (s = the model's scale, 1 for style transfer):
  numpy uint8   (H, W, 3) or a batch (N, H, W, 3), RGB  -> numpy uint8, same layout
  torch tensor  uint8 or float (0..255), (3, H, W) / (H, W, 3) / (N, 3, H, W) / (N, H, W, 3), on any device
                -> same dtype, layout and device; float outputs are clamped to 0..255, uint8 rounded.
                A layout is CHW if dim -3 has 3 channels, else HWC (pass ``layout=`` to force).
CUDA tensors stay on the GPU; the result is produced on the current CUDA stream (asynchronous, like any torch op).
Calls are serialised by a lock: safe to call from one producer thread while another thread closes it.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any, overload

import numpy as np
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.train.histogram import match_histogram as histogram_matched

_LAYOUTS = ("chw", "hwc")


class FrameError(StylizeError, ValueError):
    """A frame the Stylizer cannot take (wrong type, dtype, shape or channel count)."""


def _describe(x: np.ndarray | torch.Tensor) -> str:
    return f"{type(x).__module__.split('.')[0]} {tuple(x.shape)} {x.dtype}"


def _channels_hint(c: int) -> str:
    return {1: " (grey: repeat to 3 channels)", 4: " (RGBA/BGRA: drop alpha, e.g. frame[..., :3])"}.get(c, "")


def _numpy_to_nchw(frame: np.ndarray) -> tuple[torch.Tensor, bool]:
    """(H, W, 3) / (N, H, W, 3) uint8 -> (N, 3, H, W) uint8 CPU tensor, and whether it was a single frame."""
    if frame.dtype != np.uint8:
        raise FrameError(f"numpy frames must be uint8 RGB, got {_describe(frame)} (convert with .astype(np.uint8) "
                         "after scaling to 0..255)")
    if frame.ndim not in (3, 4):
        raise FrameError(f"numpy frames must be (H, W, 3) or (N, H, W, 3), got {_describe(frame)}")
    if frame.shape[-1] != 3:
        raise FrameError(f"numpy frames must have 3 channels last (RGB), got {_describe(frame)}"
                         f"{_channels_hint(frame.shape[-1])}")
    single = frame.ndim == 3
    batch = np.ascontiguousarray(frame[None] if single else frame)
    return torch.from_numpy(batch).permute(0, 3, 1, 2), single


def _layout_of(t: torch.Tensor, layout: str | None) -> str:
    if layout is not None:
        if layout not in _LAYOUTS:
            raise FrameError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        return layout
    if t.shape[-3] == 3:
        return "chw"
    if t.shape[-1] == 3:
        return "hwc"
    raise FrameError(f"torch frames need 3 channels in dim -3 (CHW) or -1 (HWC), got {_describe(t)}"
                     f"{_channels_hint(t.shape[-3]) or _channels_hint(t.shape[-1])}")


class Stylizer:
    """Wraps a loaded ``Backend`` with frame conversion, validation and a lock. Build with ``Stylizer.load``."""

    def __init__(self, backend: Backend, *, match_histogram: bool = False) -> None:
        """``match_histogram``: SR models only, each output matched per channel to its input (the paper's
        SR post-process, ``stylize_video.train.histogram``); refused for models that keep the size."""
        if match_histogram:
            from stylize_video.pipeline.job import check_match_histogram

            check_match_histogram(match_histogram, backend.scale)
        from stylize_video.pipeline.sizing import with_size_rules

        self.backend = with_size_rules(backend)  # any frame size >= 1x1, padded to the model's rules and cropped
        self.match_histogram = match_histogram
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, backend: str = "auto", device: str | torch.device = "auto",
             precision: str | None = None, match_histogram: bool = False, value_range: str | None = None,
             layout: str | None = None, channel_order: str | None = None, tile: int | None = None,
             tile_overlap: int | None = None, tile_batch: int = 4, **kwargs: Any) -> Stylizer:
        """Load a TensorRT engine (.plan/.engine), ONNX model (.onnx) or checkpoint (.pth/.model/.safetensors:
        ours, pytorch/examples, or any architecture spandrel detects).

        ``backend``/``device``/``precision`` and extra keywords (e.g. ``compile=True``) go to
        ``stylize_video.pipeline.backends.load_backend``. ``precision=None``: fp16 on CUDA, fp32 on the CPU.
        ``value_range`` ("0-255"/"0-1"), ``layout`` ("nchw"/"nhwc"), ``channel_order`` ("rgb"/"bgr"): the I/O
        convention of an ONNX file without our metadata. ``tile``: run frames in ``tile`` x ``tile`` tiles sharing
        ``tile_overlap`` pixels (default min(32, tile // 4)), ``tile_batch`` per call
        (``stylize_video.pipeline.tiling``).
        """
        from stylize_video.export.conventions import ConventionFlags
        from stylize_video.pipeline.backends import load_backend  # heavy: onnxruntime/tensorrt imports live there
        from stylize_video.pipeline.tiling import TileOptions

        kwargs.setdefault("convention", ConventionFlags(value_range, layout, channel_order))
        if tile is not None:
            kwargs.setdefault("tile", TileOptions(tile, tile_overlap, tile_batch))

        device = str(device)
        if precision is None:
            on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
            precision = "fp16" if on_gpu else "fp32"
        loaded = load_backend(os.fspath(path), backend=backend, device=device, precision=precision, **kwargs)
        try:
            return cls(loaded, match_histogram=match_histogram)
        except BaseException:
            loaded.close()
            raise

    # -- properties mirrored from the backend -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def scale(self) -> int | None:
        return self.backend.scale

    @property
    def precision(self) -> str:
        return self.backend.precision

    @property
    def name(self) -> str:
        return self.backend.name

    # -- calls --------------------------------------------------------------------------------------
    @overload
    def __call__(self, frame: np.ndarray, *, layout: str | None = None) -> np.ndarray: ...
    @overload
    def __call__(self, frame: torch.Tensor, *, layout: str | None = None) -> torch.Tensor: ...

    def __call__(self, frame: np.ndarray | torch.Tensor, *, layout: str | None = None) -> np.ndarray | torch.Tensor:
        """Stylize one frame or a batch; see the module docstring for accepted types and layouts."""
        if isinstance(frame, np.ndarray):
            if layout not in (None, "hwc"):
                raise FrameError("numpy frames are always HWC (H, W, 3); layout='chw' applies to torch tensors")
            nchw, single = _numpy_to_nchw(frame)
            # contiguous on the backend device (cheap on a GPU): callers get an ordinary C-order array
            out = self._run(nchw, torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            return out[0] if single else out
        if isinstance(frame, torch.Tensor):
            return self._call_tensor(frame, layout)
        raise FrameError(f"frames must be numpy arrays or torch tensors, got {type(frame).__name__}")

    def _call_tensor(self, frame: torch.Tensor, layout: str | None) -> torch.Tensor:
        if frame.dtype != torch.uint8 and not frame.dtype.is_floating_point:
            raise FrameError(f"torch frames must be uint8 or float (0..255), got {_describe(frame)}")
        if frame.ndim not in (3, 4):
            raise FrameError(f"torch frames must be 3-D (one frame) or 4-D (a batch), got {_describe(frame)}")
        lay = _layout_of(frame, layout)
        single = frame.ndim == 3
        batch = frame[None] if single else frame
        nchw = batch if lay == "chw" else batch.permute(0, 3, 1, 2)
        if nchw.shape[1] != 3:
            raise FrameError(f"layout {lay!r} puts {nchw.shape[1]} channels where 3 are needed: {_describe(frame)}")
        # Asynchronous only towards a GPU: a device->host copy must be complete before the host reads it.
        out = self._run(nchw, frame.dtype).to(frame.device, non_blocking=frame.device.type == "cuda")
        if lay == "hwc":
            out = out.permute(0, 2, 3, 1)
        return out[0] if single else out

    def _run(self, nchw: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        """(N, 3, H, W) any dtype -> (N, 3, H*s, W*s) ``out_dtype`` on the backend device."""
        if nchw.shape[0] == 0 or nchw.shape[2] == 0 or nchw.shape[3] == 0:
            raise FrameError(f"empty frame or batch: {tuple(nchw.shape)} (N, 3, H, W)")
        with self._lock:
            if self._closed:
                raise StylizeError("this Stylizer is closed")
            with torch.inference_mode():
                to_gpu = self.backend.device.type == "cuda"
                x = nchw.to(self.backend.device, non_blocking=to_gpu).to(torch.float32).contiguous()
                y = self.backend(x)
                if self.match_histogram:
                    y = histogram_matched(y, x)
                y = y.clamp_(0.0, 255.0)
                if out_dtype == torch.uint8:
                    return y.round_().to(torch.uint8)
                return y.to(out_dtype)

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the backend (waits for a call in progress). Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.backend.close()

    def __enter__(self) -> Stylizer:  # noqa: PYI034 - py3.10 has no typing.Self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.name} on {self.device}, {self.precision}, scale {self.scale}"
        return f"Stylizer({state})"
