"""Where the loss network's weights come from: torchvision ImageNet weights, a local file, or random.

``--vgg-weights imagenet`` (default) uses ``torchvision.models.VGG16_Weights.IMAGENET1K_V1`` /
``VGG19_Weights.IMAGENET1K_V1``, downloaded once into the torch hub cache
(``$TORCH_HOME/hub/checkpoints``). ``--vgg-weights PATH`` reads a torchvision VGG state_dict
(``features.N.weight`` keys; the classifier is ignored) for machines without internet.
``--vgg-weights random`` is for tests and smoke runs only and warns.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from stylize_video.cliargs import progress_enabled
from stylize_video.errors import StylizeError
from stylize_video.train.losses.vgg import VGGFeatures, init_random_

# URLError/socket/SSL errors are OSErrors; hash mismatches and corrupt archives are RuntimeErrors.
LOAD_ERRORS = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError)


def _imagenet_weights(arch: str):  # -> torchvision WeightsEnum member
    from torchvision.models import VGG16_Weights, VGG19_Weights  # heavy import, only when needed

    return {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}[arch]


def _hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _load_imagenet(arch: str) -> dict[str, torch.Tensor]:
    weights = _imagenet_weights(arch)
    try:
        _download(weights.url)
        return weights.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StylizeError(
            f"cannot load {arch.upper()} ImageNet weights for the loss network ({reason}): download "
            f"{weights.url} to {_hub_file(weights.url)} (the torch hub cache, set by TORCH_HOME), "
            f"or pass --vgg-weights PATH to a torchvision {arch} state_dict"
        ) from None


def _download(url: str) -> None:
    """Fetch ``url`` into the torch hub cache unless it is there, as ``torch.hub.load_state_dict_from_url`` would,
    minus its ``Downloading: ...`` line on stdout: a bar on a terminal, and offline only our one error line."""
    cached = _hub_file(url)
    if cached.exists():
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(cached.name)  # torchvision names carry a sha256 prefix: checked
    torch.hub.download_url_to_file(url, str(cached), match.group(1) if match else None,
                                   progress=progress_enabled(quiet=False))


def _load_file(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise StylizeError(f"VGG weights file not found: {p} (use 'imagenet', 'random' or a state_dict path)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StylizeError(f"{p} is not a PyTorch state_dict ({first})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise StylizeError(f"{p} is not a VGG state_dict (expected a dict of tensors with features.N.weight keys)")
    return obj


def _apply(extractor: VGGFeatures, state_dict: dict[str, torch.Tensor], source: str) -> None:
    # Accept full torchvision dicts ("features.0.weight") and features-only dicts ("0.weight").
    feats = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
    if not feats:
        feats = {k: v for k, v in state_dict.items() if k.split(".", 1)[0].isdigit()}
    expected = extractor.features.state_dict()
    missing = [f"features.{k}" for k in expected if k not in feats]
    if missing:
        few = ", ".join(missing[:4]) + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
        raise StylizeError(f"{source} does not hold {extractor.arch} features up to {extractor.layers[-1]}: "
                           f"missing keys: {few}")
    bad = [k for k, v in expected.items() if feats[k].shape != v.shape]
    if bad:
        raise StylizeError(f"{source} is not a {extractor.arch} state_dict: features.{bad[0]} has shape "
                           f"{tuple(feats[bad[0]].shape)}, expected {tuple(expected[bad[0]].shape)}")
    extractor.features.load_state_dict({k: feats[k] for k in expected}, strict=True)


def _random(extractor: VGGFeatures) -> None:
    warnings.warn("loss network uses RANDOM VGG weights (--vgg-weights random): only for tests and smoke runs; "
                  "the trained model will not learn a meaningful style", UserWarning, stacklevel=3)
    init_random_(extractor.features)


_SOURCES: dict[str, Callable[[VGGFeatures], None]] = {
    "imagenet": lambda ex: _apply(ex, _load_imagenet(ex.arch), f"torchvision {ex.arch} ImageNet weights"),
    "random": _random,
}


def load_vgg_weights(extractor: VGGFeatures, spec: str = "imagenet") -> VGGFeatures:
    """Fill ``extractor`` with weights from ``spec`` ('imagenet', 'random' or a file path); returns it."""
    loader = _SOURCES.get(spec)
    if loader is not None:
        loader(extractor)
    else:
        _apply(extractor, _load_file(spec), spec)
    extractor.requires_grad_(False)
    return extractor.eval()
