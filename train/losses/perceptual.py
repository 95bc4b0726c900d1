"""Feature-reconstruction, style-reconstruction and combined perceptual loss (Johnson et al. 2016).

Defaults (see train/README.md for the reasoning): features come from torchvision's VGG with
[0, 1] + ImageNet-normalised input, exactly as in pytorch/examples ``fast_neural_style``. With
per-layer style weights 1 / C_l^2 our squared-Frobenius style loss equals that example's
MSE-of-Gram loss, so its published mosaic setting (content 1e5, style 1e10) becomes content 1,
style 1e5 here (a global factor Adam ignores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from stylize_video.train.losses.gram import gram_matrix
from stylize_video.train.losses.pixel import pixel_loss
from stylize_video.train.losses.tv import total_variation
from stylize_video.train.losses.vgg import LAYER_CHANNELS, VGGFeatures
from stylize_video.train.losses.vgg_weights import load_vgg_weights
from torch import nn


def feature_reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||phi(y_hat) - phi(y)||^2 / (C H W), averaged over the batch (= MSE).

    Shapes: (N, C, H, W), (N, C, H, W) -> scalar.
    """
    return (output.float() - target.float()).pow(2).mean()


def style_reconstruction_loss(output_gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance ||G(y_hat) - G(y_s)||_F^2, averaged over the batch.

    Shapes: (N, C, C), (N or 1, C, C) -> scalar (a single style Gram broadcasts over the batch).
    """
    return (output_gram - target_gram).pow(2).sum(dim=(1, 2)).mean()


def mse_equivalent_weights(arch: str, layers: list[str]) -> dict[str, float]:
    """Per-layer style weights 1 / C_l^2: turn the Frobenius distance into the mean over Gram entries."""
    return {name: 1.0 / LAYER_CHANNELS[arch][name] ** 2 for name in layers}


@dataclass
class PerceptualConfig:
    """Loss network, layers with per-layer weights, and the weight of each term (0 disables a term)."""

    vgg: str = "vgg16"
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu2_2": 1.0})
    style_layers: dict[str, float] = field(
        default_factory=lambda: mse_equivalent_weights("vgg16", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]))
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 1e-4
    pixel_weight: float = 0.0


#: named starting points: the paper's VGG16 layers, and the VGG19 layers of lengstrom/texture_nets
PRESETS: dict[str, PerceptualConfig] = {
    "vgg16": PerceptualConfig(),
    "vgg19": PerceptualConfig(
        vgg="vgg19", content_layers={"relu4_2": 1.0},
        style_layers=mse_equivalent_weights("vgg19", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])),
}


class PerceptualLoss(nn.Module):
    """Weighted sum of content, style, TV and pixel terms.

    ``forward(output, content)``: output (N, 3, H, W) RGB 0..255 with grad, content (N, 3, H, W)
    0..255 target for the feature and pixel terms -> dict of scalars ``content``, ``style``,
    ``tv``, ``pixel`` (enabled terms only, already weighted) and ``total``. The style target is
    set once with ``set_style``. The VGG is built only if a feature or style term is enabled.
    """

    def __init__(self, config: PerceptualConfig, vgg_weights: str = "imagenet") -> None:
        super().__init__()
        self.config = config
        self.content_layers = dict(config.content_layers) if config.content_weight else {}
        self.style_layers = dict(config.style_layers) if config.style_weight else {}
        layers = list(dict.fromkeys([*self.content_layers, *self.style_layers]))
        self.vgg = load_vgg_weights(VGGFeatures(config.vgg, layers), vgg_weights) if layers else None
        self.style_grams: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_style(self, style: torch.Tensor) -> None:
        """Compute the target Gram matrices from a (1, 3, H, W) 0..255 style image."""
        if not self.style_layers:
            return
        assert self.vgg is not None
        feats = self.vgg(style, list(self.style_layers))
        self.style_grams = {name: gram_matrix(f) for name, f in feats.items()}

    def _apply(self, fn, *args, **kwargs):  # keep the style targets on the module's device
        self.style_grams = {k: fn(v) for k, v in self.style_grams.items()}
        return super()._apply(fn, *args, **kwargs)

    def forward(self, output: torch.Tensor, content: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        cfg, terms = self.config, {}
        if self.vgg is not None:
            feats = self.vgg(output)
            if self.content_layers:
                with torch.no_grad():
                    targets = self.vgg(content, list(self.content_layers))
                terms["content"] = cfg.content_weight * sum(
                    w * feature_reconstruction_loss(feats[n], targets[n]) for n, w in self.content_layers.items())
            if self.style_layers:
                if not self.style_grams:
                    raise RuntimeError("style term enabled but set_style() was never called")
                terms["style"] = cfg.style_weight * sum(
                    w * style_reconstruction_loss(gram_matrix(feats[n]), self.style_grams[n])
                    for n, w in self.style_layers.items())
        if cfg.tv_weight:
            terms["tv"] = cfg.tv_weight * total_variation(output)
        if cfg.pixel_weight:
            terms["pixel"] = cfg.pixel_weight * pixel_loss(output, content)
        if not terms:
            raise ValueError("every loss term has weight 0")
        terms["total"] = sum(terms.values())
        return terms
