"""Total-variation regulariser (squared neighbour differences, Mahendran & Vedaldi's beta = 2)."""

from __future__ import annotations

import torch
from torch import nn


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """mean((x[h+1] - x[h])^2) + mean((x[w+1] - x[w])^2), each mean over all its elements.

    Shapes: (N, C, H, W) with H, W >= 2 -> scalar. Works in whatever range ``x`` is in (we use 0..255).
    """
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return dh.float().pow(2).mean() + dw.float().pow(2).mean()


class TotalVariation(nn.Module):
    """Weighted ``total_variation``: (N, C, H, W) -> scalar."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * total_variation(x)
