"""Throughput with batches > 1 and several CUDA streams (one backend instance per stream).

Calls are enqueued round-robin from one host thread: every backend call is asynchronous (see the
``Backend`` contract), so the streams overlap on the GPU without Python threads fighting for the GIL.
A backend that synchronizes inside ``__call__`` shows up here as no gain from extra streams.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from stylize_video.benchmarks.quality import synthetic_frames
from stylize_video.pipeline.backends.base import Backend


@dataclass
class ThroughputResult:
    """One (batch, streams) point. ``fps`` counts frames over the wall time of the timed loop."""

    batch: int
    streams: int
    status: str  # "ok" | "failed"
    reason: str | None = None
    frames: int = 0
    seconds: float | None = None
    fps: float | None = None
    ms_per_batch: float | None = None
    device_used_mb: float | None = None


def _new_stream(device: torch.device) -> torch.cuda.Stream | None:
    # torch.cuda.stream(None) is a no-op context, so the same loop runs on the CPU (tests).
    return torch.cuda.Stream(device) if device.type == "cuda" else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_point(backends: list[Backend], batch: int, height: int, width: int, iters: int, warmup: int,
                  seed: int = 0) -> ThroughputResult:
    """``len(backends)`` streams, each running ``iters`` calls on its own (batch, 3, H, W) input."""
    device = backends[0].device
    streams = [_new_stream(device) for _ in backends]
    inputs = [synthetic_frames(batch, height, width, seed + i).to(device) for i in range(len(backends))]
    _sync(device)  # inputs were copied on the default stream; the side streams must see them complete
    res = ThroughputResult(batch, len(backends), "ok")
    with torch.inference_mode():
        for _ in range(warmup):
            for backend, stream, x in zip(backends, streams, inputs):
                with torch.cuda.stream(stream):
                    backend(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            for backend, stream, x in zip(backends, streams, inputs):
                with torch.cuda.stream(stream):
                    backend(x)
        _sync(device)
        seconds = time.perf_counter() - t0
    res.frames = iters * batch * len(backends)
    res.seconds = seconds
    res.fps = res.frames / seconds if seconds > 0 else None
    res.ms_per_batch = 1000.0 * seconds / iters
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        res.device_used_mb = (total - free) / 2**20
    return res


def run_throughput(make_backend: Callable[[], Backend], batches: list[int], streams: list[int], height: int,
                   width: int, iters: int, warmup: int, seed: int = 0,
                   log: Callable[[str], None] = lambda _: None) -> list[ThroughputResult]:
    """Every (batch, streams) pair; backends are created once (max(streams) of them) and reused."""
    pool: list[Backend] = []
    results: list[ThroughputResult] = []
    try:
        for _ in range(max(streams)):
            pool.append(make_backend())
        for batch in batches:
            for n in streams:
                log(f"run  throughput batch {batch} x {n} stream(s)")
                try:
                    results.append(measure_point(pool[:n], batch, height, width, iters, warmup, seed))
                except Exception as exc:  # noqa: BLE001 - e.g. batch above the engine profile's max: report, go on
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    results.append(ThroughputResult(batch, n, "failed", f"{type(exc).__name__}: {text}"))
    finally:
        for backend in pool:
            backend.close()
    return results
