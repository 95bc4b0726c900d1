"""Model-only section: baseline, speed-ups, PSNR, skips and failures, against fake backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from stylize_video.benchmarks.config import parse_size
from stylize_video.benchmarks.model_bench import SkipVariant, run_model_bench
from stylize_video.benchmarks.variants import BASELINE, VARIANTS, Variant, select, skip_reason
from stylize_video.errors import StylizeError


def _run(loader, caps, variants=None, artifact_for=None, sizes=("32x24",), batch=1):
    return run_model_bench(variants or list(VARIANTS.values()), artifact_for or (lambda v: Path("m.pth")), loader,
                           caps, "ckpt", [parse_size(s) for s in sizes], batch, iters=4, warmup=1)


def test_cardinality_and_skips(fake_loader, cpu_caps) -> None:
    res = _run(fake_loader, cpu_caps, sizes=("32x24", "40x32"))
    assert [v.label for v in res.variants] == list(VARIANTS)  # every variant listed, none dropped
    ran = [v.label for v in res.variants if v.status == "ran"]
    assert ran == [BASELINE, "ort-cpu-fp32"]
    skipped = {v.label: v.reason for v in res.variants if v.status == "skipped"}
    assert set(skipped) == set(VARIANTS) - set(ran)
    assert all(r and "CUDA" in r for r in skipped.values())
    assert [(r.variant, r.size) for r in res.results] == [(BASELINE, "32x24"), (BASELINE, "40x32"),
                                                         ("ort-cpu-fp32", "32x24"), ("ort-cpu-fp32", "40x32")]


def test_speedup_against_same_run_baseline(fake_loader, cpu_caps) -> None:
    res = _run(fake_loader, cpu_caps)
    base, ort = res.results
    assert base.speedup == 1.0 and base.psnr_db is None  # the reference itself
    assert ort.speedup == pytest.approx(base.ms_per_frame / ort.ms_per_frame)
    assert base.fps == pytest.approx(1000.0 / base.stats["median_ms"])


def test_psnr_column_shows_a_wrong_backend(fake_loader, cpu_caps) -> None:
    ort = _run(fake_loader, cpu_caps).results[1]
    assert ort.output_finite is True
    assert 40.0 < ort.psnr_db < 80.0  # noise 0.5 on 0..255 outputs: about 54 dB, clearly not identical


def test_batch_divides_per_frame_time(fake_loader, cpu_caps) -> None:
    res = _run(fake_loader, cpu_caps, variants=[VARIANTS[BASELINE]], batch=3)
    r = res.results[0]
    assert r.batch == 3 and r.ms_per_frame == pytest.approx(r.stats["median_ms"] / 3)


def test_load_failure_is_reported_not_raised(fake_loader, cpu_caps) -> None:
    fake_loader.fail = {"onnxruntime"}
    res = _run(fake_loader, cpu_caps)
    ort = next(v for v in res.variants if v.label == "ort-cpu-fp32")
    assert ort.status == "failed" and "exploded" in ort.reason
    assert [r.variant for r in res.results] == [BASELINE]


def test_artifact_skip_and_provider_mismatch(fake_loader, cpu_caps) -> None:
    def artifact_for(v: Variant) -> Path:
        if v.artifact != "ckpt":
            raise SkipVariant("no exporter here")
        return Path("m.pth")

    res = _run(fake_loader, cpu_caps, artifact_for=artifact_for)
    assert next(v for v in res.variants if v.label == "ort-cpu-fp32").reason == "no exporter here"

    mismatched = Variant("ort-odd", "expects another provider", {"backend": "onnxruntime", "device": "cpu"},
                         "ckpt", expect_name="onnxruntime-cuda")
    res = _run(fake_loader, cpu_caps, variants=[VARIANTS[BASELINE], mismatched])
    odd = res.variants[1]
    assert odd.status == "skipped" and "onnxruntime-cpu, not onnxruntime-cuda" in odd.reason
    assert fake_loader.backends[-1].closed


def test_wrong_output_shape_fails_that_size(cpu_caps, fake_backend_cls) -> None:
    def liar(model: Path, **kw: object):
        backend = fake_backend_cls()
        backend.scale = 2
        return backend

    res = run_model_bench([VARIANTS[BASELINE]], lambda v: Path("m.pth"), liar, cpu_caps, "ckpt",
                          [parse_size("32x24")], 1, iters=2, warmup=0)
    assert res.results[0].status == "failed" and "expected (1, 3, 48, 64)" in res.results[0].reason
    assert res.variants[0].status == "failed"


def test_skip_reasons_per_format(cpu_caps) -> None:
    assert "cannot be made from a plan" in skip_reason(VARIANTS[BASELINE], cpu_caps, "plan")
    assert skip_reason(VARIANTS["ort-cpu-fp32"], cpu_caps, "onnx") is None
    no_ort = type(cpu_caps)(cuda=True, ort_providers=(), tensorrt=False)
    assert skip_reason(VARIANTS["ort-cpu-fp32"], no_ort, "ckpt") == "onnxruntime is not installed"
    assert "TensorRT is not installed" in skip_reason(VARIANTS["tensorrt-fp16"], no_ort, "ckpt")


def test_select_keeps_baseline_first() -> None:
    assert [v.label for v in select(["ort-cpu-fp32"])] == [BASELINE, "ort-cpu-fp32"]
    assert [v.label for v in select(["ort-cpu-fp32", BASELINE])] == [BASELINE, "ort-cpu-fp32"]
    with pytest.raises(StylizeError, match="unknown backend 'nope'"):
        select(["nope"])
