"""Gram matrix of feature maps, normalised by C*H*W (Johnson et al. eq. 3)."""

from __future__ import annotations

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G[n, c, c'] = sum_{h,w} F[n,c,h,w] F[n,c',h,w] / (C H W).

    Shapes: (N, C, H, W) -> (N, C, C). Computed in float32 (fp16 sums over H*W overflow), also
    inside an autocast region, which would otherwise run ``bmm`` in fp16/bf16.
    """
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)
