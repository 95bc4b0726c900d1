"""Frozen VGG16/VGG19 feature extractor returning named activations in one truncated pass.

The layer indices are those of torchvision's ``vgg16().features`` / ``vgg19().features`` (conv 3x3
pad 1 + ReLU, max-pool 2x2 between blocks), so torchvision state_dicts load by key
(``features.{i}.weight``). Only the layers up to the deepest one requested are built and run.

Input range: float RGB in 0..255 (the transformation networks' convention). The module divides by
255 and applies the ImageNet mean/std normalisation torchvision's weights were trained with.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's configurations "D" (VGG16) and "E" (VGG19): channel counts, "M" = max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Name of every module of ``features`` in order: conv{b}_{i}, relu{b}_{i}, pool{b}."""
    names: list[str] = []
    block, conv = 1, 0
    for v in CONFIGS[arch]:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def _channels(arch: str) -> dict[str, int]:
    out: dict[str, int] = {}
    channels = 3
    names = iter(layer_names(arch))
    for v in CONFIGS[arch]:
        if v == "M":
            out[next(names)] = channels
        else:
            channels = int(v)
            out[next(names)] = channels
            out[next(names)] = channels
    return out


#: channel count of every named activation, per architecture
LAYER_CHANNELS: dict[str, dict[str, int]] = {arch: _channels(arch) for arch in CONFIGS}


def min_input_side(arch: str, layers: list[str]) -> int:
    """Smallest input side for which every pooling before the deepest of ``layers`` leaves >= 1 pixel."""
    names = layer_names(arch)
    deepest = max(names.index(n) for n in layers)
    return 2 ** sum(n.startswith("pool") for n in names[:deepest])


def build_features(arch: str, num_modules: int) -> nn.Sequential:
    """The first ``num_modules`` modules of torchvision's VGG ``features`` (same indices, non-inplace ReLU)."""
    layers: list[nn.Module] = []
    channels = 3
    for v in CONFIGS[arch]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # Not inplace: a requested conv output must survive the ReLU that follows it.
            layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(v)
        if len(layers) >= num_modules:
            break
    return nn.Sequential(*layers[:num_modules])


def init_random_(features: nn.Sequential) -> None:
    """torchvision's VGG initialisation (Kaiming normal, fan_out), for explicitly requested random weights."""
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)


class VGGFeatures(nn.Module):
    """Frozen VGG returning ``{name: activation}`` for the requested layers.

    Input: (N, 3, H, W) float RGB 0..255. Output: dict name -> (N, C_name, H / 2^k, W / 2^k)
    (channels in ``LAYER_CHANNELS``). Weights are loaded by the caller (``load_vgg_weights``);
    parameters never require grad and the module stays in eval mode.
    """

    def __init__(self, arch: str, layers: list[str]) -> None:
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"unknown VGG {arch!r}; known: {', '.join(CONFIGS)}")
        names = layer_names(arch)
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise ValueError(f"unknown {arch} layer(s) {', '.join(unknown) or '(none given)'}; "
                             f"known: {', '.join(names)}")
        self.arch = arch
        self.layers = list(dict.fromkeys(layers))
        self._index = {names.index(n): n for n in self.layers}
        self.features = build_features(arch, max(self._index) + 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        # Always eval: the loss network is fixed.
        return super().train(False)

    def forward(self, x: torch.Tensor, layers: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations for ``layers`` (default: all requested at construction); stops at the deepest."""
        wanted = {i: n for i, n in self._index.items() if layers is None or n in layers}
        if layers is not None and len(wanted) != len(set(layers)):
            raise ValueError(f"layers {sorted(set(layers) - set(wanted.values()))} were not requested at construction")
        last = max(wanted)
        x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features[: last + 1]):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out
