"""Timers: CUDA events on the GPU, ``time.perf_counter`` on the CPU, and the statistics we report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Stats:
    """Summary of timed iterations, milliseconds per call (one call = one batch)."""

    count: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples_ms: list[float]) -> Stats:
    """Median, p95 (linear interpolation, as ``numpy.percentile``), mean, min, max of ``samples_ms``."""
    if not samples_ms:
        raise ValueError("no samples to summarize")
    a = np.asarray(samples_ms, dtype=np.float64)
    return Stats(count=int(a.size), median_ms=float(np.median(a)), p95_ms=float(np.percentile(a, 95)),
                 mean_ms=float(a.mean()), min_ms=float(a.min()), max_ms=float(a.max()))


@dataclass(frozen=True)
class Timing:
    """Per-iteration samples plus the wall time of the whole timed loop (host clock, device synced)."""

    samples_ms: list[float]
    wall_s: float
    timer: str  # "cuda-event" | "perf_counter"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, iters: int, warmup: int) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``iters`` times timed.

    On CUDA every iteration is bracketed by events recorded on the current stream, so the figure is
    the stream time of that call (host launch gaps inside it included) and host-side timer jitter is
    excluded; the device is synchronized once before and once after the timed loop.
    On CPU each call is timed with ``perf_counter`` (CPU ops are synchronous).
    """
    for _ in range(warmup):
        fn()
    _synchronize(device)
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        t0 = time.perf_counter()
        for start, end in zip(starts, ends):
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        return Timing([s.elapsed_time(e) for s, e in zip(starts, ends)], wall, "cuda-event")
    samples: list[float] = []
    t0 = time.perf_counter()
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return Timing(samples, time.perf_counter() - t0, "perf_counter")
