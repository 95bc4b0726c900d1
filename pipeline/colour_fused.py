"""Fused colour conversion for the frame path: packed Y'CbCr planes <-> RGB float, a few passes per frame.

``stylize_video.pipeline.colour`` is the reference (readable, one step per function, ~20 tensor passes
each way). The frame path instead folds the matrix, levels and bit depth into per-channel affine
coefficients (``InCoefficients`` / ``OutCoefficients``, derived from the same ``rgb_to_yuv_matrix`` and
``_levels``) and runs:

* CPU: one Numba kernel each way (``stylize_video.pipeline.colour_kernels``): ~1 ms + ~2 ms for a
  720p 4:2:0 frame on one core, against 29 + 19 ms for the reference (issue 12). Without Numba it
  falls back to the reference functions (same values, slower) and says so once.
* CUDA: ``torch_to_rgb`` / ``torch_to_packed`` below, compiled with ``torch.compile`` into a handful
  of fused kernels (eager they are ~12 launches each way instead of ~50). Compilation happens at the
  first call, i.e. in the processor's warm-up on the thread that runs the frames; if it fails, the
  eager functions run (same values) with a warning.

Both paths also report non-finite RGB (NaN/Inf model output): the CPU kernel counts it while packing,
the torch path computes a device flag (``stylize_video.pipeline.nonfinite``) without a host sync.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.colour import _levels, downsample_chroma, rgb_to_yuv_matrix, upsample_chroma
from stylize_video.pipeline.io.planes import PlaneLayout

# siting name -> (horizontal, vertical) kernel codes (colour_kernels: 1 co-sited, 2 centred)
SITING_CODES: dict[str, tuple[int, int]] = {"left": (1, 2), "center": (2, 2), "topleft": (1, 1)}


@dataclass(frozen=True)
class InCoefficients:
    """RGB(0..255)[c] = ky[c] * Y + a[c, 0] * Cb + a[c, 1] * Cr + bias[c], in the stored sample units
    (P010's MSB-aligned samples included). float32 numpy arrays: ky (3,), a (3, 2), bias (3,)."""

    ky: np.ndarray
    a: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class OutCoefficients:
    """Y = wy . clamp(RGB) + offsets[0]; (Cb, Cr) = wc @ clamp(RGB) + offsets[1:], in code values, then
    rounded half-to-even, clamped to 0..peak and multiplied by ``scale`` (64 for P010). float32."""

    wy: np.ndarray
    wc: np.ndarray
    offsets: np.ndarray
    peak: np.float32
    scale: np.float32


def _msb_scale(layout: PlaneLayout) -> float:
    """Stored sample / code value: 2**(16 - depth) for MSB-aligned formats (P010), else 1."""
    return float(1 << (16 - layout.bit_depth)) if layout.spec[4] else 1.0


def in_coefficients(layout: PlaneLayout, colour: ColourInfo) -> InCoefficients:
    """Coefficients of ``colour.yuv_to_rgb`` for ``layout``'s bit depth and ``colour``'s matrix and range."""
    off, span, centre, cspan = _levels(colour.full_range, layout.bit_depth)
    inv = torch.linalg.inv(rgb_to_yuv_matrix(colour.matrix)).numpy()  # float64
    ky = 255.0 * inv[:, 0] / span
    a = 255.0 * inv[:, 1:] / cspan
    bias = -ky * off - a.sum(axis=1) * centre
    s = _msb_scale(layout)
    return InCoefficients((ky / s).astype(np.float32), (a / s).astype(np.float32), bias.astype(np.float32))


def out_coefficients(layout: PlaneLayout, colour: ColourInfo) -> OutCoefficients:
    """Coefficients of ``colour.rgb_to_yuv`` + ``colour.quantise`` for ``layout`` and ``colour``."""
    off, span, centre, cspan = _levels(colour.full_range, layout.bit_depth)
    m = rgb_to_yuv_matrix(colour.matrix).numpy()
    return OutCoefficients((span * m[0] / 255.0).astype(np.float32), (cspan * m[1:] / 255.0).astype(np.float32),
                           np.array([off, centre, centre], np.float32), np.float32((1 << layout.bit_depth) - 1),
                           np.float32(_msb_scale(layout)))


def _chroma_views(planes: list, layout: PlaneLayout) -> tuple:
    """(Y, Cb, Cr) of planar or semi-planar planes (NV12/P010 chroma as strided views). numpy or torch."""
    if not layout.semi_planar:
        return planes[0], planes[1], planes[2]
    uv = planes[1]
    if uv.ndim == 3:  # DLPack exports of CUDA frames: (Hc, Wc, 2)
        return planes[0], uv[..., 0], uv[..., 1]
    return planes[0], uv[:, 0::2], uv[:, 1::2]


# -- torch formulation (CUDA, and the CPU fallback's twin in tests) --------------------------------------------

def _float_samples(p: torch.Tensor) -> torch.Tensor:
    """uint8 or int16-holding-uint16 samples -> float32 of the stored values."""
    if p.dtype == torch.uint8:
        return p.float()
    return (p.to(torch.int32) & 0xFFFF).float()


def torch_to_rgb(planes: list[torch.Tensor], layout: PlaneLayout, ky: torch.Tensor, a: torch.Tensor,
                 bias: torch.Tensor, siting: str) -> torch.Tensor:
    """Planes -> (1, 3, H, W) float32 RGB 0..255 (not clamped); ky/a/bias: ``InCoefficients`` as tensors on
    the planes' device. The matrix is applied at chroma resolution, then the contributions are upsampled."""
    y, u, v = (_float_samples(p) for p in _chroma_views(planes, layout))
    d = a[:, 0, None, None] * u + a[:, 1, None, None] * v + bias[:, None, None]  # (3, Hc, Wc)
    sx, sy = layout.log2_chroma
    d = upsample_chroma(d, y.shape[-2], y.shape[-1], sx, sy, siting)
    return (ky[:, None, None] * y + d).unsqueeze(0)


def torch_to_packed(rgb: torch.Tensor, layout: PlaneLayout, wy: torch.Tensor, wc: torch.Tensor,
                    offsets: torch.Tensor, peak: float, scale: float, siting: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) RGB -> (packed planes (layout.nbytes,) uint8, non-finite flag: 0-dim int32 tensor), same device."""
    flag = (~torch.isfinite(rgb)).any().to(torch.int32)
    c = rgb[0].float().clamp(0.0, 255.0)
    y = torch.einsum("c,chw->hw", wy, c) + offsets[0]
    sx, sy = layout.log2_chroma
    cd = downsample_chroma(c, sx, sy, siting)
    uv = torch.einsum("kc,chw->khw", wc, cd) + offsets[1:, None, None]
    y = y.round().clamp(0.0, peak) * scale
    uv = uv.round().clamp(0.0, peak) * scale
    planes = [y, uv.permute(1, 2, 0)] if layout.semi_planar else [y, uv[0], uv[1]]
    if layout.bytes_per_sample == 1:
        return torch.cat([p.to(torch.uint8).flatten() for p in planes]), flag
    return torch.cat([p.to(torch.int32).to(torch.int16).flatten().view(torch.uint8) for p in planes]), flag


# -- the converter the processor uses --------------------------------------------------------------------------

_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, stacklevel=3)


def numba_kernels() -> ModuleType | None:
    """``stylize_video.pipeline.colour_kernels`` when Numba imports, else None."""
    try:
        from stylize_video.pipeline import colour_kernels
    except ImportError:
        return None
    return colour_kernels


class FusedConverter:
    """One frame geometry's conversions on one device, coefficients and buffers prepared once.

    ``to_rgb(planes)`` -> (1, 3, H, W) float32 RGB 0..255 on the device (on the CPU a buffer reused by
    the next call: consume it before). ``to_packed(rgb, out)`` writes ``out_layout``'s packed planes into
    ``out`` ((nbytes,) uint8, same device, or the host buffer on the CPU) and returns the non-finite flag:
    an int (CPU: count of NaN/Inf samples) or a 0-dim int32 device tensor (CUDA, queued on the current stream).
    """

    def __init__(self, in_layout: PlaneLayout, out_layout: PlaneLayout, colour_in: ColourInfo,
                 colour_out: ColourInfo, siting: str, device: torch.device, compile: bool | None = None) -> None:
        self.in_layout, self.out_layout, self.siting, self.device = in_layout, out_layout, siting, device
        self.cin, self.cout = in_coefficients(in_layout, colour_in), out_coefficients(out_layout, colour_out)
        self._kernels = numba_kernels() if device.type == "cpu" else None
        if device.type == "cpu" and self._kernels is None:
            _warn_once("numba", "numba is not installed: colour conversion runs the slower torch reference "
                       "(pip install numba)")
        # coefficient tensors reach the device once, here (never a pageable copy per frame)
        self._tin = tuple(torch.as_tensor(x, device=device) for x in (self.cin.ky, self.cin.a, self.cin.bias))
        self._tout = tuple(torch.as_tensor(x, device=device) for x in (self.cout.wy, self.cout.wc, self.cout.offsets))
        self._rgb: torch.Tensor | None = None
        self._to_rgb, self._to_packed = torch_to_rgb, torch_to_packed
        self.compiled = False
        if compile if compile is not None else device.type == "cuda":
            self._to_rgb, self._to_packed = _compiled(torch_to_rgb), _compiled(torch_to_packed)
            self.compiled = True
        self.path = "numba" if self._kernels is not None else ("torch-compile" if self.compiled else "torch")

    def to_rgb(self, planes: list[torch.Tensor], layout: PlaneLayout | None = None) -> torch.Tensor:
        """Planes of ``layout`` (default: the input layout) -> (1, 3, H, W) RGB."""
        layout = layout or self.in_layout
        if self._kernels is None or planes[0].device.type != "cpu":
            return self._run(self._to_rgb, torch_to_rgb, planes, layout, *self._tin, self.siting)
        if self._rgb is None or self._rgb.shape[-2:] != (layout.height, layout.width):
            self._rgb = torch.empty((1, 3, layout.height, layout.width), dtype=torch.float32)
        y, u, v = (_numpy_samples(p) for p in _chroma_views(planes, layout))
        sx, sy = layout.log2_chroma
        hs, vs = SITING_CODES[self.siting]
        c = self.cin
        self._kernels.yuv_to_rgb_planes(y, u, v, self._rgb.numpy()[0], c.ky, c.a, c.bias, sx, sy, hs, vs)
        return self._rgb

    def to_packed(self, rgb: torch.Tensor, out: torch.Tensor) -> int | torch.Tensor:
        """(1, 3, H, W) RGB (any float dtype) -> ``out``; returns the non-finite flag (see the class)."""
        lay, c = self.out_layout, self.cout
        if self._kernels is None or rgb.device.type != "cpu" or out.device.type != "cpu":
            packed, flag = self._run(self._to_packed, torch_to_packed, rgb, lay, *self._tout, float(c.peak),
                                     float(c.scale), self.siting)
            out.copy_(packed, non_blocking=True)
            return flag
        src = rgb[0].detach().to(torch.float32).contiguous().numpy()
        views = lay.numpy_views(out.numpy())
        if lay.bytes_per_sample == 2:
            views = [p.view(np.uint16) if p.dtype != np.uint16 else p for p in views]
        y, u, v = _chroma_views(views, lay)
        sx, sy = lay.log2_chroma
        hs, vs = SITING_CODES[self.siting]
        return int(self._kernels.rgb_to_yuv_planes(src, y, u, v, c.wy, c.wc, c.offsets, c.peak, c.scale,
                                                   sx, sy, hs, vs))

    def _run(self, fn: Callable, eager: Callable, *args: object) -> object:
        """``fn(*args)`` (the compiled function); on a compiler failure, ``eager`` from now on (same values)."""
        if fn is eager:
            return eager(*args)
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager twin computes the same values
            _warn_once(f"compile-{eager.__name__}", f"torch.compile of the colour conversion failed "
                       f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}); "
                       "running it eagerly")
            self._to_rgb, self._to_packed = torch_to_rgb, torch_to_packed
            self.compiled = False
            self.path = "torch"
            return eager(*args)


def _numpy_samples(p: torch.Tensor) -> np.ndarray:
    """A CPU plane as numpy: uint8, or uint16 for int16-holding-uint16 samples (zero-copy views)."""
    a = p.numpy()
    return a.view(np.uint16) if a.dtype == np.int16 else a


def _compiled(fn: Callable) -> Callable:
    """``torch.compile`` of a conversion function: static shapes (one frame size), no graph breaks expected."""
    return torch.compile(fn, dynamic=False)
