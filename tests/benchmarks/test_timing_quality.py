"""Timers, statistics, the input frames and PSNR."""

from __future__ import annotations

import math

import pytest
import torch
from stylize_video.benchmarks.quality import PSNR_IDENTICAL_DB, psnr, synthetic_frames
from stylize_video.benchmarks.timing import summarize, time_calls


def test_summarize_median_p95() -> None:
    s = summarize([float(v) for v in range(1, 101)])  # 1..100
    assert s.count == 100
    assert s.median_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(95.05)  # linear interpolation, as numpy.percentile
    assert (s.min_ms, s.max_ms, s.mean_ms) == (1.0, 100.0, 50.5)
    with pytest.raises(ValueError):
        summarize([])


def test_time_calls_counts_warmup_and_iterations() -> None:
    calls = []
    timing = time_calls(lambda: calls.append(1), torch.device("cpu"), iters=7, warmup=3)
    assert len(calls) == 10
    assert len(timing.samples_ms) == 7
    assert timing.timer == "perf_counter"
    assert all(t >= 0 for t in timing.samples_ms) and timing.wall_s >= sum(timing.samples_ms) / 1000 * 0.99


def test_synthetic_frames_deterministic_and_in_range() -> None:
    a, b = synthetic_frames(2, 30, 40, seed=3), synthetic_frames(2, 30, 40, seed=3)
    assert a.shape == (2, 3, 30, 40) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 255.0
    assert float(a.std()) > 20.0  # image-like contrast, not a flat field
    assert not torch.equal(a, synthetic_frames(2, 30, 40, seed=4))


def test_psnr_values() -> None:
    ref = torch.full((1, 3, 8, 8), 100.0)
    assert psnr(ref, ref) == PSNR_IDENTICAL_DB
    out = ref + 1.0  # MSE 1 -> 20 log10(255)
    assert psnr(out, ref) == pytest.approx(20 * math.log10(255.0))
    # Values outside 0..255 are clamped first, as when frames are stored.
    assert psnr(torch.full((1, 3, 8, 8), 300.0), torch.full((1, 3, 8, 8), 255.0)) == PSNR_IDENTICAL_DB
    with pytest.raises(ValueError, match="shape"):
        psnr(ref, ref[:, :, :4])
