"""Fixtures for the pipeline tests: tiny generated clips, tiny real networks, decoding helpers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from stylize_video.pipeline.backends.torch import TorchBackend
from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
from stylize_video.train.networks import SRNet, TransformerNet
from torch import nn


class Identity(nn.Module):
    """Test-only network returning its input: isolates the colour/IO path from any model."""

    scale = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture
def identity_backend() -> TorchBackend:
    return TorchBackend(Identity(), "cpu", "fp32")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight TransformerNet and SRNet x2 checkpoints, written once per session."""
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    return {
        "style": save_checkpoint(root / "tn.pth", TransformerNet(), ModelInfo("transformer_net", "style", 1)),
        "sr": save_checkpoint(root / "sr2.pth", SRNet(scale=2).eval(), ModelInfo("sr_net", "sr", 2)),
    }


def decoded_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Planes without line padding, as float64 sample arrays (uint16 for >8-bit formats)."""
    deep = frame.format.components[0].bits > 8
    out = []
    for plane in frame.planes:
        bps = 2 if deep else 1
        raw = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width * bps]
        out.append(raw.copy().view(np.uint16 if deep else np.uint8).astype(np.float64))
    return out


def pts_seconds(path: Path) -> list[Fraction]:
    return [f.pts * f.time_base for f in decoded_frames(path)]


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


@pytest.fixture(scope="session")
def vid():
    """Decoding helpers (fixtures, because test modules are imported with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(frames=decoded_frames, planes=frame_planes, pts=pts_seconds, audio=audio_packets,
                           psnr=psnr)
