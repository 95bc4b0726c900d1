"""Fixtures for the pipeline tests: tiny generated clips, tiny real networks, decoding helpers."""

from __future__ import annotations

import warnings
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


def reference_frames(path: Path, stream: int | None = None) -> list[av.VideoFrame]:
    """The frames FFmpeg's default decoder returns for the video stream (``stream``: its index; default the
    first video stream): frame threads, corrupt-flagged packets decoded, refused packets skipped (as the
    ``ffmpeg`` command does), flushed at the end; a stream appearing mid-file ends the demux."""
    out: list[av.VideoFrame] = []
    with av.open(str(path), metadata_errors="replace") as c:
        s = c.streams.video[0] if stream is None else c.streams[stream]
        s.thread_type = "AUTO"
        it = c.demux(s)
        while True:
            try:
                packet = next(it)
            except (StopIteration, IndexError):  # IndexError: PyAV 18 on a stream added mid-file
                break
            except av.error.FFmpegError:
                break
            if packet.size:
                try:
                    out += s.codec_context.decode(packet)
                except av.error.FFmpegError:
                    pass
        try:
            out += s.codec_context.decode(None)
        except av.error.FFmpegError:
            pass
        for f in out:
            if f.time_base is None:  # frames drained by the flush carry none
                f.time_base = s.time_base
    return out


def in_order(frames: list[av.VideoFrame], step: Fraction | None = None) -> list[Fraction]:
    """Presentation times of the frames that come after every earlier one (what a muxer can keep), seconds.

    A frame without a PTS is kept at the previous time + ``step`` (one nominal frame), as the pipeline does.
    """
    kept: list[Fraction] = []
    for f in frames:
        if f.pts is None:
            t = kept[-1] + (step or 0) if kept else Fraction(0)
            t = -(-t // f.time_base) * f.time_base  # the pipeline's timestamp: a whole tick at or after it
        else:
            t = f.pts * f.time_base
        if not kept or t > kept[-1] or f.pts is None:
            kept.append(t)
    return kept


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


@pytest.fixture(scope="session")
def negate_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real ONNX model, 255 - x as one 1x1 convolution (dynamic H/W): runs in microseconds, so the
    fuzz and CLI tests measure the pipeline, not a network."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(-torch.eye(3).view(3, 3, 1, 1))
        conv.bias.fill_(255.0)
    path = tmp_path_factory.mktemp("onnx") / "negate.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(conv.eval(), torch.rand(1, 3, 16, 16) * 255, str(path), input_names=["input"],
                          output_names=["output"], opset_version=17, dynamo=False,
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}})
    return path


@pytest.fixture(scope="session")
def vid():
    """Decoding helpers (fixtures, because test modules are imported with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(frames=decoded_frames, planes=frame_planes, pts=pts_seconds, audio=audio_packets,
                           psnr=psnr, reference=reference_frames, in_order=in_order)
