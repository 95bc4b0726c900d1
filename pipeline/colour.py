"""Y'CbCr <-> R'G'B' conversion and chroma resampling as pure torch functions (any device).

We never let swscale pick coefficients: the matrix (BT.601 / BT.709 / BT.2020 ...), the range
(limited "tv" or full "pc") and the bit depth are explicit arguments, read from the stream by
``stylize_video.pipeline.colorinfo``. Code values are floats in the stream's integer scale (0..1023 for 10-bit);
RGB is float 0..255, the networks' convention.

Chroma siting follows the H.264/HEVC/MPEG-2 default for 4:2:0 ("left": horizontally co-sited
with even luma columns, vertically between rows) unless told "center" (JPEG / MPEG-1).
"""

from __future__ import annotations

import functools

import torch

# matrix name -> (Kr, Kb): ITU-R BT.601-7, BT.709-6, BT.2020-2 (non-constant luminance), FCC, SMPTE 240M.
KR_KB: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
}


def _levels(full_range: bool, bit_depth: int) -> tuple[float, float, float, float]:
    """(luma offset, luma span, chroma centre, chroma span) in code values of ``bit_depth`` bits."""
    if full_range:
        peak = float((1 << bit_depth) - 1)
        return 0.0, peak, float(1 << (bit_depth - 1)), peak
    k = float(1 << (bit_depth - 8))
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


def rgb_to_yuv_matrix(matrix: str) -> torch.Tensor:
    """3x3 matrix M with [Y', Cb, Cr] = M @ [R', G', B'] for normalised values (Y' 0..1, C -0.5..0.5)."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    return torch.tensor([
        [kr, kg, kb],
        [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
        [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)],
    ], dtype=torch.float64)


@functools.cache
def _device_matrix(matrix: str, inverse: bool, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(3, 3) YCbCr->RGB (``inverse``, x255) or RGB->YCbCr (/255) matrix on ``device``, built once.

    Cached because a host->device copy from pageable memory blocks the host until the current stream
    has drained: per frame, that would stall the processor's queue behind the model on every call.
    Read-only and never freed, so sharing it across streams and threads is safe.
    """
    with torch.inference_mode(False):  # a normal tensor, usable with autograd too
        m = rgb_to_yuv_matrix(matrix)
        if inverse:
            return torch.linalg.inv(m).to(device=device, dtype=dtype) * 255.0
        return m.to(device=device, dtype=dtype) / 255.0


def yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, matrix: str, full_range: bool,
               bit_depth: int = 8) -> torch.Tensor:
    """Full-resolution Y, Cb, Cr code values -> RGB 0..255 (not clamped).

    Shapes: y, u, v (..., H, W) float -> (..., 3, H, W) float, same dtype/device as ``y``.
    """
    off, span, centre, cspan = _levels(full_range, bit_depth)
    inv = _device_matrix(matrix, True, y.device, y.dtype)
    yn = (y - off) / span
    un = (u - centre) / cspan
    vn = (v - centre) / cspan
    ycc = torch.stack([yn, un, vn], dim=-3)  # (..., 3, H, W)
    return torch.einsum("ij,...jhw->...ihw", inv, ycc)


def rgb_to_yuv(rgb: torch.Tensor, *, matrix: str, full_range: bool,
               bit_depth: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB 0..255 -> full-resolution Y, Cb, Cr code values (float, not rounded).

    Shapes: (..., 3, H, W) -> three (..., H, W).
    """
    off, span, centre, cspan = _levels(full_range, bit_depth)
    m = _device_matrix(matrix, False, rgb.device, rgb.dtype)
    ycc = torch.einsum("ij,...jhw->...ihw", m, rgb)
    return ycc[..., 0, :, :] * span + off, ycc[..., 1, :, :] * cspan + centre, ycc[..., 2, :, :] * cspan + centre


def _interleave(even: torch.Tensor, odd: torch.Tensor, length: int) -> torch.Tensor:
    """(..., n), (..., n) -> (..., length) with even/odd samples alternating, cropped to ``length``."""
    return torch.stack([even, odd], dim=-1).flatten(-2)[..., :length]


def upsample2_last(c: torch.Tensor, length: int, siting: str) -> torch.Tensor:
    """Linear x2 upsampling along the last dim. (..., ceil(length / 2)) -> (..., length).

    ``siting="cosited"``: chroma sample i sits on luma 2i. ``"center"``: between luma 2i and 2i+1.
    """
    nxt = torch.cat([c[..., 1:], c[..., -1:]], dim=-1)
    if siting == "cosited":
        return _interleave(c, 0.5 * (c + nxt), length)
    prev = torch.cat([c[..., :1], c[..., :-1]], dim=-1)
    return _interleave(0.75 * c + 0.25 * prev, 0.75 * c + 0.25 * nxt, length)


def downsample2_last(x: torch.Tensor, siting: str) -> torch.Tensor:
    """Filtered /2 decimation along the last dim, the counterpart of ``upsample2_last``.

    Shapes: (..., L) -> (..., ceil(L / 2)). Odd L is edge-extended by one sample.
    """
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], dim=-1)
    even, odd = x[..., 0::2], x[..., 1::2]
    if siting == "cosited":
        odd_prev = torch.cat([odd[..., :1], odd[..., :-1]], dim=-1)  # mirror at the left edge
        return 0.25 * odd_prev + 0.5 * even + 0.25 * odd
    return 0.5 * (even + odd)


def upsample_chroma(c: torch.Tensor, height: int, width: int, log2_sx: int, log2_sy: int,
                    siting: str = "left") -> torch.Tensor:
    """Chroma plane to luma resolution.

    Shapes: (..., ceil(H / 2**log2_sy), ceil(W / 2**log2_sx)) -> (..., H, W).
    ``siting``: "left" (co-sited horizontally, centred vertically; the 4:2:0 default of H.264/HEVC),
    "center" (centred both ways), "topleft" (co-sited both ways).
    """
    hs, vs = _SITINGS[siting]
    _check_factors(log2_sx, log2_sy)
    if log2_sx:
        c = upsample2_last(c, width, hs)
    if log2_sy:
        c = upsample2_last(c.transpose(-1, -2), height, vs).transpose(-1, -2)
    return c


def downsample_chroma(c: torch.Tensor, log2_sx: int, log2_sy: int, siting: str = "left") -> torch.Tensor:
    """Full-resolution chroma plane to the subsampled grid. (..., H, W) -> (..., ceil(H/sy), ceil(W/sx))."""
    hs, vs = _SITINGS[siting]
    _check_factors(log2_sx, log2_sy)
    if log2_sx:
        c = downsample2_last(c, hs)
    if log2_sy:
        c = downsample2_last(c.transpose(-1, -2), vs).transpose(-1, -2)
    return c


def _check_factors(log2_sx: int, log2_sy: int) -> None:
    # 4:4:4, 4:2:2, 4:4:0 and 4:2:0 only; 4:1:1 / 4:1:0 are converted by swscale upstream.
    if log2_sx not in (0, 1) or log2_sy not in (0, 1):
        raise ValueError(f"chroma subsampling 1/{1 << log2_sx} x 1/{1 << log2_sy} is not supported")


# siting name -> (horizontal, vertical) 1-D siting
_SITINGS: dict[str, tuple[str, str]] = {
    "left": ("cosited", "center"),
    "center": ("center", "center"),
    "topleft": ("cosited", "cosited"),
}


def quantise(x: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Round code values and clamp to the representable range. Shape unchanged; float in, float out."""
    return x.round().clamp_(0, (1 << bit_depth) - 1)
