"""Style-transfer task: TransformerNet trained with content + style + TV perceptual losses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.train.data import Transform, resize_center_crop
from stylize_video.train.images import read_image
from stylize_video.train.losses import PerceptualConfig, PerceptualLoss
from stylize_video.train.losses.vgg import min_input_side
from stylize_video.train.networks import build_network
from stylize_video.train.runtime import Runtime
from torch import nn


@dataclass
class StyleConfig:
    """What the style network is trained on (paper defaults: 256 px crops, VGG16 losses)."""

    style_image: str
    image_size: int = 256
    style_size: int = 256  # longer side of the style image; 0 keeps its size
    vgg_weights: str = "imagenet"
    loss: PerceptualConfig = field(default_factory=PerceptualConfig)


def resize_longer_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Scale so the longer side is ``size`` (bicubic, antialiased). Shapes: (3, H, W) -> (3, H', W') float."""
    x = image.float()[None]
    if size:
        s = size / max(x.shape[-2:])
        hw = (max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s)))
        x = F.interpolate(x, size=hw, mode="bicubic", antialias=True, align_corners=False).clamp(0, 255)
    return x[0]


class StyleTask:
    """Task for ``stylize_video.train.trainer.train``: batch (N, 3, S, S) 0..255 -> loss terms."""

    arch = "transformer_net"
    scale = 1

    def __init__(self, cfg: StyleConfig) -> None:
        self.cfg = cfg
        self.style = resize_longer_side(read_image(cfg.style_image, "style image"), cfg.style_size)
        if cfg.loss.style_weight and cfg.loss.style_layers:
            need = min_input_side(cfg.loss.vgg, list(cfg.loss.style_layers))
            h, w = self.style.shape[-2:]
            if min(h, w) < need:
                raise StylizeError(f"the style image is {h}x{w} px after --style-size {cfg.style_size}; the "
                                   f"{cfg.loss.vgg} style layers need at least {need} px a side")
        self.loss: PerceptualLoss | None = None

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def build(self, runtime: Runtime) -> nn.Module:
        self.loss = PerceptualLoss(self.cfg.loss, self.cfg.vgg_weights).to(runtime.device)
        self.loss.set_style(runtime.to_device(self.style[None]))
        return build_network(self.arch, self.scale)

    def transform(self) -> Transform:
        return resize_center_crop(self.cfg.image_size)

    def losses(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self.loss is not None, "build() first"
        return self.loss(model(batch), batch)

    def sample_grid(self, model: nn.Module, images: list[torch.Tensor], runtime: Runtime) -> torch.Tensor:
        """Content images on the top row, stylised below. Shapes: list of (3, S, S) -> (3, 2S, k S)."""
        x = runtime.to_device(torch.stack(images))
        y = model(x).float().clamp(0, 255)
        return torch.cat([torch.cat(list(x.float()), dim=-1), torch.cat(list(y), dim=-1)], dim=-2).cpu()
