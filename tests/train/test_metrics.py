"""Y-channel PSNR/SSIM against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from stylize_video.train.metrics import crop_border, psnr, rgb_to_y, ssim


def test_bt601_luma_range() -> None:
    white, black = torch.full((3, 2, 2), 255.0), torch.zeros(3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 2, 2), 235.0, dtype=torch.float64))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 2, 2), 16.0, dtype=torch.float64))
    red = torch.zeros(3, 1, 1)
    red[0] = 255
    assert rgb_to_y(red).item() == pytest.approx(16 + 65.481)


def test_psnr_identical_is_inf() -> None:
    x = torch.rand(1, 20, 20) * 255
    assert psnr(x, x) == math.inf


def test_psnr_known_noise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 32, 32, generator=g, dtype=torch.float64) * 200
    noisy = x + torch.randn(1, 32, 32, generator=g, dtype=torch.float64) * 5
    mse = ((noisy - x) ** 2).mean().item()
    assert psnr(noisy, x) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    # +-3 everywhere: MSE 9 exactly
    assert psnr(x + 3, x) == pytest.approx(10 * math.log10(255**2 / 9), abs=1e-9)


def test_ssim_identical_and_constants() -> None:
    x = torch.rand(1, 24, 24, dtype=torch.float64) * 255
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    a, b = torch.full((1, 16, 16), 100.0), torch.full((1, 16, 16), 120.0)
    c1 = (0.01 * 255) ** 2
    # zero variance: the contrast/structure factor is c2 / c2 = 1, only luminance remains
    assert ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), abs=1e-12)


def test_ssim_matches_windowwise_formula() -> None:
    """12x12 images -> a 2x2 map of 11x11 Gaussian windows, each evaluated with explicit sums."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, 12, generator=g, dtype=torch.float64) * 255
    y = (x + torch.randn(12, 12, generator=g, dtype=torch.float64) * 40).clamp(0, 255)
    r = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-(r**2) / (2 * 1.5**2))
    w = torch.outer(w1, w1) / torch.outer(w1, w1).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(2):
        for j in range(2):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).item())
    expected = sum(values) / 4
    assert ssim(y[None], x[None]) == pytest.approx(expected, abs=1e-10)
    assert expected < 0.95


def test_ssim_too_small() -> None:
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(1, 10, 10), torch.zeros(1, 10, 10))


def test_crop_border() -> None:
    assert crop_border(torch.zeros(1, 10, 12), 4).shape == (1, 2, 4)
