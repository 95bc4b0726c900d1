"""Super-resolution networks of Johnson et al. (supplementary Table 2), x2 / x4 / x8.

9x9 conv (64) -> 4 residual blocks of 64 -> one x2 resize-convolution per factor of two ->
9x9 conv to RGB. Batch norm as in the paper (it folds into the convolutions at export).
"""

from __future__ import annotations

import math

import torch
from stylize_video.sizerules import SizeRules
from stylize_video.train.networks.blocks import ConvLayer, ResidualBlock, UpsampleConvLayer
from torch import nn

SCALES = (2, 4, 8)


class SRNet(nn.Module):
    """Super-resolution network.

    Input: (N, 3, H, W) float RGB 0..255. Output: (N, 3, H * scale, W * scale), same range,
    not clamped. Any H, W >= 5 (stride-1 convolutions only, so no size constraint).
    """

    task = "sr"
    size_rules = SizeRules(minimum=5)  # the 9x9 reflection pad needs sides >= 5; smaller frames are padded outside

    def __init__(self, scale: int = 4, channels: int = 64, num_residual: int = 4) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"SR scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        self.conv1 = ConvLayer(3, channels, kernel_size=9, stride=1)
        self.in1 = nn.BatchNorm2d(channels)
        self.res = nn.Sequential(*[ResidualBlock(channels, norm="batch") for _ in range(num_residual)])
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [UpsampleConvLayer(channels, channels, kernel_size=3, upsample=2), nn.BatchNorm2d(channels), nn.ReLU()]
        self.up = nn.Sequential(*ups)
        self.conv_out = ConvLayer(channels, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Work on [0, 1]-ish values internally; the I/O convention stays 0..255 like TransformerNet.
        y = self.relu(self.in1(self.conv1(x / 255.0)))
        y = self.up(self.res(y))
        return self.conv_out(y) * 255.0
