"""Johnson et al. style-transfer network, as in pytorch/examples ``fast_neural_style``.

State-dict keys are identical to pytorch/examples (``conv1.conv2d.weight``, ``in1.weight``,
``res1.conv1.conv2d.weight``, ``deconv1.conv2d.weight`` ...), so its published
mosaic/candy/udnie/rain_princess ``.pth`` files load directly.
"""

from __future__ import annotations

import torch
from stylize_video.sizerules import SizeRules
from stylize_video.train.networks.blocks import ConvLayer, ResidualBlock, UpsampleConvLayer, pad_to_multiple
from torch import nn

# Two stride-2 convolutions: sides must be multiples of 4 for the output to match the input.
SIZE_MULTIPLE = 4
# Smallest side the reflection paddings accept (9x9 kernel pads 4 on each side).
MIN_SIDE = 5


class TransformerNet(nn.Module):
    """Image transformation network for style transfer.

    Input and output: (N, 3, H, W) float RGB in 0..255 (output is not clamped). Any H, W >= 5:
    the input is reflect-padded to a multiple of 4 and the output cropped back to H x W.
    """

    task = "style"
    scale = 1
    # Smaller frames are padded up to 5x5 outside the network and the output cropped back.
    size_rules = SizeRules(minimum=MIN_SIDE)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = pad_to_multiple(x, SIZE_MULTIPLE)
        return self.forward_unpadded(x)[:, :, :h, :w]

    def forward_unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """pytorch/examples' forward: no padding, so H and W must be multiples of 4 (and >= 5) for the
        output to keep the input size (what a hand export of their network gives)."""
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)
