"""Low-resolution inputs for SR training: Gaussian blur (sigma 1.0), then bicubic downsampling.

As in Johnson et al. section 4.2. The downsampling is our MATLAB-compatible ``imresize`` so training
inputs match the evaluation protocol's; the result is rounded to 0..255 integers like a saved image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from stylize_video.train.resize import imresize


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd length 2 * ceil(3 sigma) + 1. Shape: (K,)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. Shapes: (N, C, H, W) -> (N, C, H, W), H, W > 3 sigma."""
    k = gaussian_kernel(sigma, x.dtype).to(x.device)
    r, c = k.numel() // 2, x.shape[1]
    x = F.pad(x, [r, r, r, r], mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def degrade(hr: torch.Tensor, scale: int, sigma: float = 1.0) -> torch.Tensor:
    """HR batch -> LR batch. Shapes: (N, 3, H, W) 0..255 -> (N, 3, ceil(H / scale), ceil(W / scale)) float,
    integer-valued in 0..255."""
    x = hr.float()
    if sigma > 0:
        x = gaussian_blur(x, sigma)
    return imresize(x, 1.0 / scale).clamp_(0, 255).round_()
