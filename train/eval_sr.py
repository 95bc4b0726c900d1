"""``stylize-train eval-sr``: PSNR/SSIM of an SR model or the bicubic baseline on a folder of HR images.

Protocol (the common SR benchmark one): HR cropped to a multiple of the scale; LR made with the
MATLAB-compatible bicubic ``imresize`` and rounded to 8 bits; the output (histogram-matched to the
LR when asked, as the paper does) clamped and rounded to 8 bits; metrics on BT.601 luma with
``scale`` pixels cropped from each border.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from stylize_video.errors import StylizeError
from stylize_video.train.histogram import DEFAULT_BINS, match_histogram
from stylize_video.train.images import list_images, read_image
from stylize_video.train.metrics import crop_border, psnr, rgb_to_y, ssim
from stylize_video.train.resize import imresize

Upscaler = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) float 0..255 -> (1, 3, h*s, w*s)


@dataclass
class SRScore:
    name: str
    psnr: float
    ssim: float


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop bottom/right so H and W are multiples of ``scale``. Shapes: (..., H, W) -> (..., H', W')."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Float image -> nearest 8-bit values (as float64), the way a saved image would be."""
    return x.double().clamp(0, 255).round()


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr: imresize(lr.double(), float(scale))


def model_upscaler(model: torch.nn.Module, device: torch.device) -> Upscaler:
    @torch.no_grad()
    def up(lr: torch.Tensor) -> torch.Tensor:
        return model(lr.float().to(device)).double().cpu()

    return up


def with_histogram_matching(upscale: Upscaler, bins: int = DEFAULT_BINS) -> Upscaler:
    """The paper's SR post-process: match each output's per-channel histogram to its LR input."""

    def up(lr: torch.Tensor) -> torch.Tensor:
        return match_histogram(upscale(lr), lr.to(torch.float64), bins)

    return up


def min_side(scale: int) -> int:
    """Smallest HR side we score: SSIM needs 11 px after the border crop; SRNet needs 5 px of LR input."""
    return max(11 + 2 * scale, 5 * scale)


def score_image(hr: torch.Tensor, scale: int, upscale: Upscaler) -> tuple[float, float]:
    """(PSNR, SSIM) on Y for one (3, H, W) uint8 HR image."""
    hr = quantise(mod_crop(hr, scale))
    lr = quantise(imresize(hr[None], 1.0 / scale))
    sr = quantise(upscale(lr))[0]
    if sr.shape != hr.shape:
        raise RuntimeError(f"upscaler returned {tuple(sr.shape)} for HR {tuple(hr.shape)}")
    y_sr, y_hr = crop_border(rgb_to_y(sr), scale), crop_border(rgb_to_y(hr), scale)
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)


def evaluate(data: str | Path, scale: int, upscale: Upscaler) -> tuple[list[SRScore], list[str]]:
    """Score every image under ``data`` (recursive). Returns (scores, names skipped as unreadable/too small)."""
    root = Path(data)
    scores, skipped = [], []
    for path in list_images(root):
        name = str(path.relative_to(root))
        try:
            hr = read_image(path)
        except StylizeError:  # unreadable: reported with the skipped ones
            skipped.append(name)
            continue
        if min(hr.shape[-2:]) < min_side(scale):
            skipped.append(name)
            continue
        scores.append(SRScore(name, *score_image(hr, scale, upscale)))
    return scores, skipped


def mean_score(scores: list[SRScore]) -> SRScore:
    n = max(1, len(scores))
    return SRScore("mean", sum(s.psnr for s in scores) / n, sum(s.ssim for s in scores) / n)


def _finite(x: float) -> float | None:
    # JSON has no infinity: an identical image's PSNR is written as null (documented).
    return x if math.isfinite(x) else None


def to_json(scores: list[SRScore], skipped: list[str], meta: dict) -> dict:
    return {**meta, "images": [{**asdict(s), "psnr": _finite(s.psnr)} for s in scores],
            "mean": {"psnr": _finite(mean_score(scores).psnr), "ssim": mean_score(scores).ssim},
            "skipped": skipped}


def format_table(scores: list[SRScore]) -> str:
    width = max([len("image"), *(len(s.name) for s in scores)])
    lines = [f"{'image':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}"]
    for s in [*scores, mean_score(scores)]:
        if s.name == "mean":
            lines.append("-" * (width + 19))
        lines.append(f"{s.name:<{width}}  {s.psnr:>9.2f}  {s.ssim:>6.4f}")
    return "\n".join(lines)
