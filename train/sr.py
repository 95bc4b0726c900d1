"""Super-resolution task: SRNet trained on blurred, bicubic-downsampled 288 px patches."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.train.data import Transform, random_patch
from stylize_video.train.degrade import degrade
from stylize_video.train.losses import PerceptualConfig, PerceptualLoss
from stylize_video.train.networks import SCALES, build_network
from stylize_video.train.runtime import Runtime
from torch import nn


def sr_loss_config(kind: str) -> PerceptualConfig:
    """Paper SR losses: feature reconstruction at relu2_2 only, or the per-pixel baseline."""
    presets = {
        "feature": PerceptualConfig(content_layers={"relu2_2": 1.0}, style_layers={}, content_weight=1.0,
                                    style_weight=0.0, tv_weight=0.0),
        "pixel": PerceptualConfig(content_layers={}, style_layers={}, content_weight=0.0, style_weight=0.0,
                                  tv_weight=0.0, pixel_weight=1.0),
    }
    if kind not in presets:
        raise StylizeError(f"unknown SR loss {kind!r}; choose one of {', '.join(presets)}")
    return presets[kind]


@dataclass
class SRConfig:
    scale: int = 4
    patch_size: int = 288
    blur_sigma: float = 1.0
    loss_kind: str = "feature"
    vgg_weights: str = "imagenet"
    loss: PerceptualConfig = field(default_factory=lambda: sr_loss_config("feature"))


class SRTask:
    """Task for ``stylize_video.train.trainer.train``: HR patches (N, 3, P, P) -> LR (P / scale) -> SRNet -> loss terms."""

    arch = "sr_net"

    def __init__(self, cfg: SRConfig) -> None:
        if cfg.scale not in SCALES:
            raise StylizeError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {cfg.scale}")
        if cfg.patch_size % cfg.scale or cfg.patch_size // cfg.scale < 5:
            raise StylizeError(f"--patch-size {cfg.patch_size} must be a multiple of the scale {cfg.scale} "
                               f"and give low-resolution patches of at least 5 px")
        if cfg.blur_sigma < 0:
            raise StylizeError(f"--blur-sigma must be >= 0 (0: no blur), got {cfg.blur_sigma}")
        self.cfg, self.scale = cfg, cfg.scale
        self.loss: PerceptualLoss | None = None

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def build(self, runtime: Runtime) -> nn.Module:
        self.loss = PerceptualLoss(self.cfg.loss, self.cfg.vgg_weights).to(runtime.device)
        return build_network(self.arch, self.scale)

    def transform(self) -> Transform:
        return random_patch(self.cfg.patch_size)

    def low_res(self, hr: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hr.device.type, enabled=False):  # blur/resize in fp32
            return degrade(hr.float(), self.scale, self.cfg.blur_sigma)

    def losses(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self.loss is not None, "build() first"
        return self.loss(model(self.low_res(batch)), batch)

    def sample_grid(self, model: nn.Module, images: list[torch.Tensor], runtime: Runtime) -> torch.Tensor:
        """Rows: LR input (nearest-upscaled), SR output, HR target. list of (3, P, P) -> (3, 3P, k P)."""
        hr = runtime.to_device(torch.stack(images))
        lr = self.low_res(hr)
        sr = model(lr).float().clamp(0, 255)
        near = F.interpolate(lr, scale_factor=self.scale, mode="nearest")
        rows = [torch.cat(list(t.float()), dim=-1) for t in (near, sr, hr)]
        return torch.cat(rows, dim=-2).cpu()
