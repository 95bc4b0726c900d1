"""Building blocks shared by the transformation networks.

Attribute names (``conv2d``) follow pytorch/examples ``fast_neural_style`` so that its
published ``.pth`` files load into our modules unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Module):
    """Reflection padding then convolution: no zero borders leak into the output.

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(nn.Module):
    """Resize-convolution (nearest x2, then conv): avoids transposed-conv checkerboards.

    Shapes: (N, C_in, H, W) -> (N, C_out, H * upsample, W * upsample).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, upsample: int = 2) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=float(self.upsample), mode="nearest")
        return self.conv2d(self.reflection_pad(x))


def _norm(kind: str, channels: int) -> nn.Module:
    # Instance norm (Ulyanov et al.) for style; batch norm as in the paper's SR networks.
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown normalisation {kind!r}")


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-conv-norm plus identity; no ReLU after the addition (Gross & Wilber).

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = _norm(norm, channels)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = _norm(norm, channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad the bottom/right edges so H and W become multiples of ``multiple``.

    Returns the padded tensor and the original (H, W). Written with shape arithmetic only,
    so the padding stays dynamic when the module is exported to ONNX.
    Shapes: (N, C, H, W) -> (N, C, H', W') with H' = ceil(H / m) * m.
    """
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    # pad <= multiple - 1 < side for every side >= multiple, which the 9x9 reflect pad needs anyway.
    return F.pad(x, [0, pad_w, 0, pad_h], mode="reflect"), h, w
