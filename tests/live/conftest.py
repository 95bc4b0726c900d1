"""Fixtures for the live tests: tiny generated clips, in-test backends, free loopback ports, the job runner."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.job import JobOptions, stylize
from stylize_video.pipeline.stats import RunStats
from stylize_video.pipeline.synth import make_test_clip


class NegateBackend(Backend):
    """255 - x: a visible, exactly known 'style' (an identity would pass even if the model were skipped)."""

    name, precision = "negate", "fp32"

    def __init__(self, scale: int = 1, delay_s: float = 0.0) -> None:
        self.device = torch.device("cpu")
        self.scale = scale
        self.delay_s = delay_s
        self.calls = 0
        self.closed = 0
        self.in_call = threading.Lock()  # detects overlapping calls

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.in_call.acquire(blocking=False):
            raise AssertionError("backend called concurrently")
        try:
            self.calls += 1
            if self.delay_s:
                time.sleep(self.delay_s)  # a deliberately slow model
            y = 255.0 - x
            if self.scale > 1:
                y = y.repeat_interleave(self.scale, -1).repeat_interleave(self.scale, -2)
            return y
        finally:
            self.in_call.release()

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def negate() -> type[NegateBackend]:
    return NegateBackend


@pytest.fixture(scope="session")
def flat_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25 frames, 64x48, 25 fps, smooth gradient (survives 4:2:0 + x264 well enough for pixel checks)."""
    return make_test_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", width=64, height=48, frames=25, fps=25,
                          audio=False)


def free_port(kind: int) -> int:
    """A port on 127.0.0.1 that was free a moment ago (SOCK_DGRAM or SOCK_STREAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture
def tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


def run_job(source, sink, backend: Backend, **options) -> RunStats:
    """The one frame path (``stylize_video.pipeline.job.stylize``) from ``source`` to ``sink``; closes the source."""
    try:
        return stylize(source, sink, backend, JobOptions(progress=False, **options))
    finally:
        source.close()


def rgb_frames(path_or_frames) -> list[np.ndarray]:
    """Decoded frames -> RGB uint8 with their tagged colour, converted by our matrices (stylize_video.pipeline.colour)."""
    from stylize_video.pipeline.live.vcam import frame_to_rgb

    if isinstance(path_or_frames, (str, Path)):
        with av.open(str(path_or_frames)) as c:
            return [frame_to_rgb(f) for f in c.decode(video=0)]
    return [frame_to_rgb(f) for f in path_or_frames]


class IdentityBackend(NegateBackend):
    """Returns its input: isolates the colour / I/O path from any model."""

    name = "identity"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """8-bit planes without line padding, as float64."""
    return [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:p.height, :p.width].astype(np.float64)
            for p in frame.planes]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


@pytest.fixture(scope="session")
def live():
    """Helpers as a fixture (test modules are imported with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(run=run_job, rgb=rgb_frames, Negate=NegateBackend, Identity=IdentityBackend,
                           planes=frame_planes, psnr=psnr)
