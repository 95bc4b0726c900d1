"""Shared fixtures for the training-stage tests: tiny generated image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def write_noise_images(folder: Path, count: int, size: tuple[int, int] = (40, 48), seed: int = 0) -> list[Path]:
    """``count`` random RGB PNGs of (height, width) ``size`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        a = (rng.random((*size, 3)) * 255).astype(np.uint8)
        paths.append(folder / f"img{i}.png")
        Image.fromarray(a).save(paths[-1])
    return paths


@pytest.fixture
def make_images():
    """Factory: ``make_images(folder, count, size=(h, w), seed=0)`` writes random RGB PNGs."""
    return write_noise_images


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six RGB images at the top, plus grayscale/RGBA/CMYK and one junk file in a subfolder."""
    root = tmp_path / "data"
    write_noise_images(root, 6)
    rng = np.random.default_rng(1)
    sub = root / "sub"
    sub.mkdir()
    Image.fromarray((rng.random((36, 36)) * 255).astype(np.uint8), "L").save(sub / "gray.jpg")
    Image.fromarray((rng.random((36, 36, 4)) * 255).astype(np.uint8), "RGBA").save(sub / "alpha.png")
    Image.new("CMYK", (40, 40), (10, 20, 30, 40)).save(sub / "cmyk.jpg")
    (sub / "broken.jpg").write_bytes(b"this is not a jpeg")
    return root


@pytest.fixture
def style_image(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    rng = np.random.default_rng(2)
    # Smooth stripes plus noise: a style with structure at several scales.
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([127 + 120 * np.sin(xx / 3), 127 + 120 * np.sin(yy / 5), 127 + 60 * np.sin((xx + yy) / 7)], -1)
    Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread for these tiny tensors: on the shared 2-core CI machine, OpenMP threads
    competing with other processes made the 30-step run ~5x slower (29 s vs 6 s measured here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
