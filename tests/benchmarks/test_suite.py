"""Whole-run behaviour: failures stay inside their section, nothing measured is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from stylize_video.benchmarks.config import BenchConfig, parse_size
from stylize_video.benchmarks.suite import Hooks, run_benchmark
from stylize_video.benchmarks.validate import validate
from stylize_video.errors import StylizeError


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
                                    "bottleneck": None, "full_vs_ceiling": None, "pipeline_vs_plain": None,
                                    "runs": [], "load_average": []}
    assert record["throughput"]["size"] == {"label": "64x48", "width": 64, "height": 48}


def test_nothing_measured_is_an_error(tmp_path: Path, fake_loader, cpu_caps) -> None:
    fake_loader.fail = {"torch", "onnxruntime"}
    with pytest.raises(StylizeError, match="no backend produced a measurement.*exploded"):
        run_benchmark(_cfg(tmp_path), [], _hooks(fake_loader, cpu_caps))


def test_compile_mode_reaches_only_the_compiled_variant(tmp_path: Path, fake_loader, cpu_caps) -> None:
    from stylize_video.benchmarks.suite import with_compile_mode

    seen: list[object] = []

    def loader(path: Path, **kw: object) -> object:
        seen.append(kw.get("compile"))
        return kw

    wrapped = with_compile_mode(loader, "reduce-overhead")
    wrapped(Path("m.pth"), backend="torch", compile=True)
    wrapped(Path("m.pth"), backend="torch")
    wrapped(Path("m.onnx"), backend="onnxruntime", compile=False)
    assert seen == ["reduce-overhead", None, False]
    assert with_compile_mode(loader, None) is loader
    record = run_benchmark(_cfg(tmp_path, e2e=False, compile_mode="reduce-overhead"), [], _hooks(fake_loader, cpu_caps))
    assert validate(record) == [] and any("'reduce-overhead'" in n for n in record["notes"])


def test_spent_budget_skips_what_has_not_begun_and_still_reports(tmp_path: Path, fake_loader, cpu_caps) -> None:
    from stylize_video.benchmarks.tables import render_markdown

    cfg = _cfg(tmp_path, budget_s=1e-9)
    cfg.sizes.append(parse_size("48x32"))
    record = run_benchmark(cfg, [], _hooks(fake_loader, cpu_caps))
    assert validate(record) == []
    by_variant = {v["label"]: v for v in record["variants"]}
    assert by_variant["torch-fp32"]["status"] == "ran"  # the baseline is never cut: figures are relative to it
    assert [r["status"] for r in record["model_results"] if r["variant"] == "torch-fp32"] == ["ok", "ok"]
    assert by_variant["ort-cpu-fp32"]["status"] == "skipped" and "time budget" in by_variant["ort-cpu-fp32"]["reason"]
    assert record["end_to_end"]["status"] == "ok"  # always runs: it names the bottleneck
    assert "time budget" in render_markdown(record)
