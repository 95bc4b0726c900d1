"""MATLAB-compatible ``imresize`` (bicubic, antialiased) in torch, as separable resampling matrices.

Follows MATLAB's ``imresize`` for a scale factor: cubic kernel with a = -0.5; when shrinking, the
kernel is widened by 1/scale (antialiasing); output sample i (1-based) maps to input coordinate
u = i / scale + 0.5 (1 - 1/scale); taps outside the image use symmetric padding (edge pixel
repeated: index 0 -> 1, -1 -> 2, ...); weights are normalised to sum to 1. Height is resized
first, then width (MATLAB's order for equal factors). We compute in float and do not round
between the two passes; callers quantise the result if they need uint8 images.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """(out_len, in_len) float64 matrix M with ``out = M @ in`` along one axis; out_len = ceil(in_len * scale)."""
    if in_len < 1 or scale <= 0:
        raise ValueError(f"cannot resize length {in_len} by {scale}")
    out_len = math.ceil(in_len * scale - 1e-9)
    width = 4.0
    kscale = scale if (scale < 1 and antialias) else 1.0
    width /= kscale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    ind = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based input positions
    weights = kscale * cubic(kscale * (u[:, None] - ind))
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric padding: MATLAB's aux = [1:n, n:-1:1] indexed modulo 2n.
    aux = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    src = aux[torch.remainder(ind.long() - 1, 2 * in_len)]
    rows = torch.arange(out_len)[:, None].expand_as(src)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    matrix.index_put_((rows.reshape(-1), src.reshape(-1)), weights.reshape(-1), accumulate=True)
    return matrix


def imresize(x: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """Resize the last two axes by ``scale`` like MATLAB ``imresize(x, scale, 'bicubic')``.

    Shapes: (..., H, W) float -> (..., ceil(H * scale), ceil(W * scale)), same dtype and device.
    """
    if not x.is_floating_point():
        raise TypeError("imresize expects a floating-point tensor")
    mh = resize_matrix(x.shape[-2], float(scale), antialias).to(x.device, x.dtype)
    mw = resize_matrix(x.shape[-1], float(scale), antialias).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(mh, x), mw.transpose(0, 1))
