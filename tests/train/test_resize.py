"""MATLAB-compatible bicubic imresize against hand-derived kernel values."""

from __future__ import annotations

import pytest
import torch
from stylize_video.train.resize import cubic, imresize, resize_matrix

# Keys' cubic (a = -0.5) at the distances that occur for factors 2 and 1/2, from the formula by hand:
# |x| <= 1: 1.5|x|^3 - 2.5|x|^2 + 1;  1 < |x| <= 2: -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2
K025, K075, K125, K175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375


def test_cubic_kernel_values() -> None:
    x = torch.tensor([0.0, 0.25, 0.75, 1.25, 1.75, 2.0, 2.5], dtype=torch.float64)
    assert cubic(x).tolist() == [1.0, K025, K075, K125, K175, 0.0, 0.0]


def test_downscale_by_two_by_hand() -> None:
    x = torch.tensor([1.0, 4, 9, 16, 25, 36, 49, 64], dtype=torch.float64)
    # Antialiased: kernel stretched x2, so taps at distances 0.5, 1.5, 2.5, 3.5 get cubic(d / 2) / 2.
    w = [K175 / 2, K125 / 2, K075 / 2, K025 / 2, K025 / 2, K075 / 2, K125 / 2, K175 / 2]
    # Output 1 sits at input 1.5 (1-based); taps -2..5, symmetric padding maps -2 -> 3, -1 -> 2, 0 -> 1.
    x1 = dict(enumerate(x.tolist(), start=1))
    taps0 = [3, 2, 1, 1, 2, 3, 4, 5]
    out0 = sum(wi * x1[t] for wi, t in zip(w, taps0))
    # Output 2 sits at input 3.5: taps 0..7, with 0 -> 1.
    taps1 = [1, 1, 2, 3, 4, 5, 6, 7]
    out1 = sum(wi * x1[t] for wi, t in zip(w, taps1))
    y = imresize(x.view(1, 1, 8), 0.5)[0, 0]  # height 1 -> 1 (weights normalise to 1)
    assert y.shape == (4,)
    assert y[0].item() == pytest.approx(out0, abs=1e-12) and y[0].item() == pytest.approx(2.19921875, abs=1e-12)
    assert y[1].item() == pytest.approx(out1, abs=1e-12)


def test_upscale_by_two_by_hand() -> None:
    m = resize_matrix(4, 2.0)
    # Output 1 sits at input 0.75: taps -1 (d 1.75), 0 (0.75), 1 (-0.25), 2 (-1.25); -1 -> 2, 0 -> 1.
    assert m[0].tolist() == pytest.approx([K075 + K025, K175 + K125, 0.0, 0.0], abs=1e-15)
    # Output 4 sits at input 2.25: taps 1 (1.25), 2 (0.25), 3 (-0.75), 4 (-1.75).
    assert m[3].tolist() == pytest.approx([K125, K025, K075, K175], abs=1e-15)


def test_constant_and_ramp_are_preserved() -> None:
    c = torch.full((1, 3, 12, 20), 77.0, dtype=torch.float64)
    assert torch.allclose(imresize(c, 0.25), torch.full((1, 3, 3, 5), 77.0, dtype=torch.float64))
    ramp = torch.arange(40, dtype=torch.float64).view(1, 40).expand(4, 40)
    y = imresize(ramp, 0.5)
    # away from the symmetric-padded borders a cubic reproduces linear data: sample i at 2i + 0.5 (0-based)
    assert torch.allclose(y[0, 4:-4], 2 * torch.arange(4, 16, dtype=torch.float64) + 0.5)


def test_output_size_is_ceil() -> None:
    assert imresize(torch.rand(2, 3, 10, 13), 0.25).shape == (2, 3, 3, 4)
    assert imresize(torch.rand(1, 3, 5, 7), 4.0).shape == (1, 3, 20, 28)
