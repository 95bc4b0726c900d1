"""Fixtures for the live tests: tiny generated clips, in-test backends, free loopback ports."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from pipeline.backends.base import Backend
from pipeline.synth import make_test_clip


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
