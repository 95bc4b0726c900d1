"""Transformation networks and their builders (dispatch by architecture name)."""

from __future__ import annotations

from collections.abc import Callable

from stylize_video.train.networks.sr_net import SCALES, SRNet
from stylize_video.train.networks.transformer_net import TransformerNet
from torch import nn


def _transformer_net(scale: int) -> nn.Module:
    if scale != 1:
        raise ValueError(f"transformer_net has scale 1, got {scale}")
    return TransformerNet()


# Architecture name -> builder(scale). Names are what checkpoints and ONNX metadata record.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "transformer_net": _transformer_net,
    "sr_net": lambda scale: SRNet(scale=scale),
}
TASK_OF_ARCH = {"transformer_net": "style", "sr_net": "sr"}


def build_network(arch: str, scale: int = 1) -> nn.Module:
    """Build an untrained network by architecture name (``transformer_net`` or ``sr_net``)."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}") from None
    return builder(scale)


__all__ = ["ARCHITECTURES", "SCALES", "TASK_OF_ARCH", "SRNet", "TransformerNet", "build_network"]
