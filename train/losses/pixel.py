"""Pixel loss of the SR baseline: per-pixel MSE on the [0, 1] scale (so PSNR = -10 log10(loss))."""

from __future__ import annotations

import torch


def pixel_loss(output: torch.Tensor, target: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """mean(((output - target) / data_range)^2).

    Shapes: (N, C, H, W), (N, C, H, W) -> scalar. Inputs in 0..``data_range``.
    """
    return ((output.float() - target.float()) / data_range).pow(2).mean()
