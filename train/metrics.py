"""SR metrics on the luma channel: PSNR and SSIM (Wang et al. 2004), the usual SR protocol.

Y follows ITU-R BT.601 as MATLAB's ``rgb2ycbcr``: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
for R, G, B in 0..255, i.e. Y in 16..235 on the 0..255 scale. Like BasicSR we keep Y in float
(MATLAB rounds it to uint8 for uint8 input; the difference is below 0.01 dB on standard sets).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BT601_Y = (65.481, 128.553, 24.966)


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma. Shapes: (..., 3, H, W) RGB 0..255 -> (..., 1, H, W) float64 in 16..235."""
    w = torch.tensor(BT601_Y, dtype=torch.float64, device=rgb.device).view(3, 1, 1)
    return 16.0 + (rgb.double() * w).sum(dim=-3, keepdim=True) / 255.0


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on each side. Shapes: (..., H, W) -> (..., H - 2b, W - 2b)."""
    return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border] if border > 0 else x


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """10 log10(range^2 / MSE) over all elements; ``inf`` for identical inputs. Shapes: any, equal."""
    mse = float((a.double() - b.double()).pow(2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """Mean SSIM of two single-channel images (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, 'valid' window).

    Shapes: (1, H, W) or (H, W), equal, with H, W >= 11 -> float.
    """
    x, y = a.double().reshape(1, 1, *a.shape[-2:]), b.double().reshape(1, 1, *b.shape[-2:])
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11, got {tuple(x.shape[-2:])}")
    win = _gaussian_window().to(x.device).view(1, 1, 11, 11)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mu_x * mu_x
    syy = F.conv2d(y * y, win) - mu_y * mu_y
    sxy = F.conv2d(x * y, win) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return float((num / den).mean())
