"""Perceptual losses (Johnson et al. 2016): VGG features, Gram matrices, feature/style/TV/pixel losses."""

from stylize_video.train.losses.gram import gram_matrix
from stylize_video.train.losses.perceptual import (
    PRESETS,
    PerceptualConfig,
    PerceptualLoss,
    feature_reconstruction_loss,
    style_reconstruction_loss,
)
from stylize_video.train.losses.pixel import pixel_loss
from stylize_video.train.losses.tv import total_variation
from stylize_video.train.losses.vgg import LAYER_CHANNELS, VGGFeatures, layer_names
from stylize_video.train.losses.vgg_weights import load_vgg_weights

__all__ = [
    "LAYER_CHANNELS",
    "PRESETS",
    "PerceptualConfig",
    "PerceptualLoss",
    "VGGFeatures",
    "feature_reconstruction_loss",
    "gram_matrix",
    "layer_names",
    "load_vgg_weights",
    "pixel_loss",
    "style_reconstruction_loss",
    "total_variation",
]
