"""The benchmark input frame and the output-difference metric (PSNR against the FP32 baseline)."""

from __future__ import annotations

import math

import torch

# Bound for identical outputs: JSON has no +inf, and 0.1 dB above anything real keeps tables sortable.
PSNR_IDENTICAL_DB = 200.0


def synthetic_frames(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A deterministic, image-like test batch: smooth colour gradients, a few edges, mild noise.

    Natural-looking content matters for the FP16 comparison (flat noise hides precision problems in
    instance norm). Shapes: -> (batch, 3, height, width) float32 RGB in 0..255, on the CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0.0, 1.0, height).view(1, 1, height, 1)
    xs = torch.linspace(0.0, 1.0, width).view(1, 1, 1, width)
    phase = torch.rand(batch, 3, 1, 1, generator=gen) * 2 * math.pi
    freq = 1.0 + 4.0 * torch.rand(batch, 3, 1, 1, generator=gen)
    base = 0.5 + 0.35 * torch.sin(freq * (2.0 * xs + ys) * math.pi + phase)
    blocks = ((xs * 8).floor() + (ys * 6).floor()) % 2  # hard edges, like text or object borders
    noise = 0.03 * torch.randn(batch, 3, height, width, generator=gen)
    img = (0.8 * base + 0.15 * blocks + noise).clamp(0.0, 1.0)
    return (img * 255.0).contiguous()


def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of ``output`` against ``reference`` after clamping both to 0..255 (how frames are stored).

    Shapes: (N, 3, H, W), (N, 3, H, W) -> float. Identical outputs give ``PSNR_IDENTICAL_DB``.
    """
    if output.shape != reference.shape:
        raise ValueError(f"output shape {tuple(output.shape)} differs from reference {tuple(reference.shape)}")
    a = output.detach().to("cpu", torch.float64).clamp(0.0, 255.0)
    b = reference.detach().to("cpu", torch.float64).clamp(0.0, 255.0)
    mse = float(torch.mean((a - b) ** 2))
    if not math.isfinite(mse):
        return float("nan")
    if mse == 0.0:
        return PSNR_IDENTICAL_DB
    return min(PSNR_IDENTICAL_DB, 10.0 * math.log10(255.0**2 / mse))
