"""Fakes shared by the benchmark tests: tiny CPU backends behind the real ``Backend`` contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from stylize_video.benchmarks.machine import Capabilities
from stylize_video.pipeline.backends.base import Backend
from torch import nn


class TinyNet(nn.Module):
    """3->3 conv + a x``scale`` nearest upsample: fast, deterministic, image-to-image."""

    def __init__(self, scale: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) + x
        return nn.functional.interpolate(y, scale_factor=self.scale) if self.scale > 1 else y


class FakeBackend(Backend):
    """TinyNet on the CPU; ``noise`` perturbs the output, ``delay_s`` slows every call."""

    def __init__(self, name: str = "torch", precision: str = "fp32", scale: int = 1, noise: float = 0.0,
                 delay_s: float = 0.0, max_batch: int | None = None) -> None:
        self.name, self.precision, self.scale = name, precision, scale
        self.device = torch.device("cpu")
        self.net = TinyNet(scale).eval()
        self.noise, self.delay_s, self.max_batch = noise, delay_s, max_batch
        self.calls = 0
        self.closed = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.max_batch is not None and x.shape[0] > self.max_batch:
            raise RuntimeError(f"batch {x.shape[0]} above the profile's max {self.max_batch}")
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        with torch.no_grad():
            y = self.net(x)
        if self.noise:
            y = y + self.noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        return y

    def close(self) -> None:
        self.closed = True


class FakeLoader:
    """``load_backend`` stand-in: dispatches on (backend, precision) to FakeBackend settings."""

    def __init__(self, scale: int = 1, fail: set[str] | None = None) -> None:
        self.scale = scale
        self.fail = fail or set()
        self.loaded: list[dict] = []
        self.backends: list[FakeBackend] = []

    def __call__(self, model: Path, backend: str = "auto", device: str = "auto", precision: str = "fp16",
                 compile: bool = False, ort_provider: str | None = None) -> FakeBackend:
        self.loaded.append({"model": Path(model), "backend": backend, "device": device, "precision": precision,
                            "ort_provider": ort_provider})
        if backend in self.fail:
            raise RuntimeError(f"{backend} exploded while loading")
        settings = {
            "torch": {"name": "torch"},
            "onnxruntime": {"name": "onnxruntime-cpu", "noise": 0.5},
            "tensorrt": {"name": "tensorrt", "max_batch": 2},
        }[backend]
        b = FakeBackend(precision=precision, scale=self.scale, **settings)
        self.backends.append(b)
        return b


CPU_ONLY = Capabilities(cuda=False, ort_providers=("CPUExecutionProvider",), tensorrt=False)


@pytest.fixture
def fake_loader() -> FakeLoader:
    return FakeLoader()


@pytest.fixture
def cpu_caps() -> Capabilities:
    return CPU_ONLY


@pytest.fixture
def fake_backend_cls() -> type[FakeBackend]:
    return FakeBackend


@pytest.fixture(scope="session")
def sample_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A whole run with fake backends and a fake full pipeline (real clip, decode, encode, export)."""
    from stylize_video.benchmarks.config import BenchConfig, parse_size
    from stylize_video.benchmarks.suite import Hooks, run_benchmark

    work = tmp_path_factory.mktemp("bench-work")
    cfg = BenchConfig(random_weights="style", sizes=[parse_size("32x24"), parse_size("40x32")], iters=3, warmup=1,
                      e2e_frames=4, work_dir=work, throughput_batches=[1, 2], throughput_streams=[1])
    hooks = Hooks(loader=FakeLoader(), full_runner=lambda src, dst, backend, n: {"frames": n},
                  caps=CPU_ONLY, artifacts=lambda variant: work / "unused-by-fake-loader.pth", log=lambda _msg: None)
    return run_benchmark(cfg, ["--random-weights", "style"], hooks)
