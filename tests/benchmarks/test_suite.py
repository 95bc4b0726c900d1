"""Whole-run behaviour: failures stay inside their section, nothing measured is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.config import BenchConfig, parse_size
from benchmarks.suite import Hooks, run_benchmark
from benchmarks.validate import validate
from train.errors import StylizeError


def _cfg(tmp_path: Path, **kw: object) -> BenchConfig:
    return BenchConfig(random_weights="style", sizes=[parse_size("32x24")], iters=2, warmup=0, e2e_frames=3,
                       work_dir=tmp_path, **kw)


def _hooks(loader, caps, **kw: object) -> Hooks:
    return Hooks(loader=loader, caps=caps, artifacts=lambda v: Path("unused.pth"), log=lambda _m: None, **kw)


def test_failing_pipeline_is_a_failed_stage(tmp_path: Path, fake_loader, cpu_caps) -> None:
    def broken(src: Path, dst: Path, backend: object, n: int) -> dict:
        raise RuntimeError("encoder vanished")

    record = run_benchmark(_cfg(tmp_path), [], _hooks(fake_loader, cpu_caps, full_runner=broken))
    assert validate(record) == []
    full = record["end_to_end"]["stages"][-1]
    assert full["stage"] == "full" and full["status"] == "failed" and "encoder vanished" in full["reason"]
    assert record["end_to_end"]["bottleneck"] is not None and record["end_to_end"]["full_vs_ceiling"] is None


def test_no_e2e_and_custom_throughput_size(tmp_path: Path, fake_loader, cpu_caps) -> None:
    cfg = _cfg(tmp_path, e2e=False, throughput_size=parse_size("64x48"))
    record = run_benchmark(cfg, [], _hooks(fake_loader, cpu_caps))
    assert record["end_to_end"] == {"status": "skipped", "reason": "--no-e2e given", "clip": None, "stages": [],
                                    "bottleneck": None, "full_vs_ceiling": None}
    assert record["throughput"]["size"] == {"label": "64x48", "width": 64, "height": 48}


def test_nothing_measured_is_an_error(tmp_path: Path, fake_loader, cpu_caps) -> None:
    fake_loader.fail = {"torch", "onnxruntime"}
    with pytest.raises(StylizeError, match="no backend produced a measurement.*exploded"):
        run_benchmark(_cfg(tmp_path), [], _hooks(fake_loader, cpu_caps))
