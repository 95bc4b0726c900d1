"""Finding and decoding images: recursive listing, RGB conversion, uint8 tensors.

Every mode Pillow opens becomes RGB: grayscale is replicated, palette expanded, CMYK converted,
16/32-bit grayscale scaled to 8 bits, and transparency composited over white (so transparent
regions do not turn black). EXIF orientation is applied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from stylize_video.cliargs import progress_bar
from stylize_video.errors import StylizeError
from stylize_video.outfiles import partial_path

# What Pillow raises for missing, truncated or non-image files.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif")


def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """All files under ``root`` (recursive) with an image extension, sorted for a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise StylizeError(f"data folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise StylizeError(f"no images under {root} (searched recursively for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def readable_images(files: list[Path], *, quiet: bool = False) -> tuple[list[Path], list[Path]]:
    """Split ``files`` into (readable, unreadable) by parsing each header (cheap: no pixel decode)."""
    good, bad = [], []
    # A COCO-sized folder takes a few seconds: show progress only then (and only on a terminal, not --quiet).
    for path in progress_bar(files, quiet=quiet or len(files) < 2000, desc="checking images", unit="file"):
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018 - header parsed, size known
            good.append(path)
        except DECODE_ERRORS:  # UnidentifiedImageError is an OSError
            bad.append(path)
    return good, bad


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB (see module docstring for the rules)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or a.max() > 255 else 255.0
        image = Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image fully and convert it to RGB. Raises whatever Pillow raises on bad files."""
    with Image.open(path) as im:
        im.load()
        return to_rgb(im)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3, H, W) uint8 tensor."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def read_image(path: str | os.PathLike[str], what: str = "image") -> torch.Tensor:
    """Load ``path`` as a (3, H, W) uint8 RGB tensor; unreadable files are a one-line ``StylizeError``."""
    p = Path(path)
    if not p.is_file():
        raise StylizeError(f"{what} not found: {p}")
    try:
        return to_tensor(load_rgb(p))
    except DECODE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StylizeError(f"cannot read {what} {p}: {reason}") from None


def save_image(tensor: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Save a (3, H, W) float 0..255 (clamped, rounded) or uint8 tensor as an image, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = tensor.detach().float().clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    tmp = partial_path(path)
    Image.fromarray(array, "RGB").save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    os.replace(tmp, path)
    return path
