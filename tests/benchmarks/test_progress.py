"""stylize-bench keeps what it measured: reports written as measurements come in and on SIGTERM; the
end-to-end section honours --budget-s; pipeline_vs_plain (issue 12) is the median of the pairs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from stylize_video.benchmarks import cli
from stylize_video.benchmarks.config import BenchConfig, parse_size
from stylize_video.benchmarks.suite import PARTIAL_NOTE, Hooks, run_benchmark
from stylize_video.benchmarks.validate import validate


def _cfg(tmp_path: Path, **kw: object) -> BenchConfig:
    return BenchConfig(random_weights="style", sizes=[parse_size("32x24")], iters=2, warmup=0, e2e_frames=3,
                       work_dir=tmp_path, throughput_batches=[1], throughput_streams=[1], **kw)


def _hooks(loader, caps, **kw: object) -> Hooks:
    return Hooks(loader=loader, caps=caps, artifacts=lambda v: Path("unused.pth"), log=lambda _m: None, **kw)


def test_partial_records_are_valid_and_grow(tmp_path, fake_loader, cpu_caps):
    seen: list[dict] = []
    run_benchmark(_cfg(tmp_path), [], _hooks(fake_loader, cpu_caps, progress=seen.append,
                                              full_runner=lambda s, d, b, n: {"frames": n, "pipeline_wall_s": 0.1}))
    assert len(seen) >= 5 and all(validate(r) == [] and PARTIAL_NOTE in r["notes"] for r in seen)
    assert seen[0]["end_to_end"]["reason"].startswith("not measured yet")
    counts = [len(r["model_results"]) + len(r["end_to_end"]["stages"]) for r in seen]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_end_to_end_honours_the_budget(tmp_path, fake_loader, cpu_caps):
    record = run_benchmark(_cfg(tmp_path, budget_s=1e-6), [], _hooks(fake_loader, cpu_caps))
    stages = record["end_to_end"]["stages"]
    assert [s["stage"] for s in stages] == ["decode", "encode", "model", "plain", "full"]
    assert all(s["status"] == "skipped" and "--budget-s" in s["reason"] for s in stages)
    assert record["throughput"]["status"] == "skipped" and validate(record) == []


def test_pipeline_vs_plain_is_the_median_of_the_pairs(tmp_path, fake_loader, cpu_caps, monkeypatch):
    from stylize_video.benchmarks import e2e as stages

    walls = iter([3.0, 1.0, 2.0])  # frame-loop seconds of three full runs (3 frames each)
    order: list[str] = []
    plain = stages.plain_transcode
    monkeypatch.setattr(stages, "plain_transcode", lambda *a, **k: order.append("plain") or plain(*a, **k))

    def full(s, d, b, n):
        order.append("full")
        return {"frames": n, "pipeline_wall_s": next(walls)}

    record = run_benchmark(_cfg(tmp_path, e2e_repeats=3), [], _hooks(fake_loader, cpu_caps, full_runner=full))
    e2e = record["end_to_end"]
    # which side runs first alternates, so neither always gets the colder slot
    assert order == ["plain", "full", "full", "plain", "plain", "full"]
    assert [r["first"] for r in e2e["runs"]] == ["plain", "full", "plain"]
    assert len(e2e["runs"]) == 3 and len(e2e["load_average"]) == 4
    ratios = [r["ratio"] for r in e2e["runs"]]
    for run, wall in zip(e2e["runs"], (3.0, 1.0, 2.0)):
        assert run["pipeline_loop_fps"] == pytest.approx(3 / wall) and run["ratio"] == pytest.approx(
            run["pipeline_loop_fps"] / run["plain_fps"])
    assert e2e["pipeline_vs_plain"] == pytest.approx(sorted(ratios)[1])
    assert [s["stage"] for s in e2e["stages"]][-2:] == ["plain", "full"]


def test_sigterm_writes_what_was_measured(tmp_path, monkeypatch, capsys, sample_record):
    """A real SIGTERM during the run (as `timeout` sends): the last partial record is written, exit 143."""
    from stylize_video.benchmarks import suite

    partial = {**sample_record, "notes": [*sample_record["notes"], PARTIAL_NOTE]}

    def fake_run(cfg, argv, hooks):
        hooks.progress(partial)
        signal.raise_signal(signal.SIGTERM)  # delivered to the handler run_cli installed
        pytest.fail("SIGTERM did not stop the run")

    monkeypatch.setattr(suite, "run_benchmark", fake_run)
    out = tmp_path / "r.json"
    rc = cli.main(["--random-weights", "style", "--json", str(out), "--markdown", str(tmp_path / "r.md"), "--quiet"])
    record = json.loads(out.read_text())
    assert rc == 128 + signal.SIGTERM and validate(record) == []
    assert any(n.startswith("STOPPED by SIGTERM") for n in record["notes"])
    assert (tmp_path / "r.md").read_text().startswith("# stylize-bench")
    assert "stopped by SIGTERM; partial reports:" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_identity_model_is_a_valid_do_nothing_onnx(tmp_path):
    import numpy as np
    import onnxruntime as ort
    from stylize_video.benchmarks.artifacts import describe_model
    from stylize_video.benchmarks.identity import make_identity_onnx

    path = make_identity_onnx(tmp_path)
    assert make_identity_onnx(tmp_path) == path  # made once
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 5, 7)).astype(np.float32)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert np.array_equal(x, y)
    meta = describe_model(path, "onnx", None)
    assert (meta["task"], meta["scale"]) == ("style", 1)
