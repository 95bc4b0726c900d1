"""The same runs on a CUDA machine, with the GPU variants. Skipped (with the reason) where there is no GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from stylize_video.benchmarks.cli import main
from stylize_video.benchmarks.model_bench import fp32_strict
from stylize_video.benchmarks.validate import validate

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU benchmark paths not run")
needs_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                                    reason="TensorRT not installed: engine benchmark paths not run")


def test_fp32_strict_turns_tf32_off_and_restores() -> None:
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    if not hasattr(conv, "fp32_precision"):
        pytest.skip("torch < 2.9: legacy allow_tf32 flags only")
    before = (conv.fp32_precision, matmul.fp32_precision)
    with fp32_strict():
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, matmul.fp32_precision) == before


@needs_cuda
def test_gpu_torch_variants(tmp_path: Path) -> None:
    js = tmp_path / "gpu.json"
    assert main(["--random-weights", "style", "--sizes", "64x48,128x96", "--iters", "3", "--warmup", "1",
                 "--backends", "torch-fp16", "--clip-frames", "4", "--work-dir", str(tmp_path), "--json", str(js),
                 "--quiet"]) == 0
    record = json.loads(js.read_text())
    assert validate(record) == [] and record["machine"]["gpu"] is not None
    rows = {(r["variant"], r["size"]): r for r in record["model_results"]}
    base, half = rows[("torch-fp32", "64x48")], rows[("torch-fp16", "64x48")]
    assert base["timer"] == "cuda-event" and base["memory"]["torch_peak_allocated_mb"] > 0
    assert half["speedup"] is not None and half["psnr_db"] > 30.0  # FP16 with FP32 norms stays close


@needs_cuda
@needs_tensorrt
def test_gpu_tensorrt_engine_and_throughput(tmp_path: Path) -> None:
    js = tmp_path / "trt.json"
    assert main(["--random-weights", "style", "--sizes", "64x48", "--iters", "3", "--warmup", "1",
                 "--backends", "tensorrt-fp16", "--no-e2e", "--throughput-size", "64x48",
                 "--throughput-batches", "1,2", "--throughput-streams", "1,2", "--work-dir", str(tmp_path),
                 "--json", str(js), "--quiet"]) == 0
    record = json.loads(js.read_text())
    trt = next(r for r in record["model_results"] if r["variant"] == "tensorrt-fp16")
    assert trt["status"] == "ok" and trt["psnr_db"] > 30.0
    points = record["throughput"]["results"]
    assert [(p["batch"], p["streams"]) for p in points] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(p["status"] == "ok" and p["fps"] > 0 for p in points)


def test_run_gpu_script_parses_and_checks_its_mode() -> None:
    import subprocess

    script = str(Path(__file__).resolve().parents[2] / "benchmarks" / "run_gpu.sh")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", *args, script], check=False, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", **env})

    assert run("-n").returncode == 0
    bad = run(MODE="bogus")
    assert bad.returncode == 1 and "MODE must be full, quick or smoke" in bad.stderr
    bad = run(MODE="quick", BUDGET_S="9m")
    assert bad.returncode == 1 and "BUDGET_S must be a whole number" in bad.stderr
