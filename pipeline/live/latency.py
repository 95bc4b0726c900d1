"""Per-frame latency (decode -> encode) and frame counters for live runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of an already sorted list.

    Args:
        sorted_values: ascending values, at least one.
        q: percentile in [0, 100].
    """
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class LatencyStats:
    """Collects per-frame latencies in seconds; reports milliseconds."""

    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def summary(self) -> dict[str, float | int]:
        """``{"count", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}``; only count when empty."""
        if not self.samples:
            return {"count": 0}
        s = sorted(self.samples)
        ms = 1000.0
        return {
            "count": len(s),
            "mean_ms": round(sum(s) / len(s) * ms, 3),
            "min_ms": round(s[0] * ms, 3),
            "p50_ms": round(percentile(s, 50) * ms, 3),
            "p95_ms": round(percentile(s, 95) * ms, 3),
            "p99_ms": round(percentile(s, 99) * ms, 3),
            "max_ms": round(s[-1] * ms, 3),
        }


@dataclass
class LiveReport:
    """What a live run did. ``frames_in == frames_out + dropped`` once the run has drained."""

    frames_in: int = 0  # decoded from the source
    frames_out: int = 0  # written to the sink
    dropped: int = 0  # replaced by a newer frame before the model could take them (realtime only)
    max_backlog: int = 0  # most frames decoded but not yet taken when the model took a frame
    wall_s: float = 0.0
    realtime: bool = False
    paced: bool = False
    interrupted: bool = False  # ended by Ctrl-C
    latency: LatencyStats = field(default_factory=LatencyStats)  # decode -> encoded and muxed
    model_time: LatencyStats = field(default_factory=LatencyStats)  # model call alone

    def to_dict(self) -> dict[str, Any]:
        fps = self.frames_out / self.wall_s if self.wall_s > 0 else 0.0
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "max_backlog_frames": self.max_backlog,
            "wall_s": round(self.wall_s, 3),
            "fps": round(fps, 2),
            "realtime": self.realtime,
            "paced": self.paced,
            "interrupted": self.interrupted,
            "latency_ms": self.latency.summary(),
            "model_ms": self.model_time.summary(),
        }

    def summary_line(self) -> str:
        """One human line for the end of a run."""
        d = self.to_dict()
        lat = d["latency_ms"]
        text = f"{d['frames_out']} frames out of {d['frames_in']} in {d['wall_s']:.2f}s ({d['fps']:.1f} fps)"
        if self.realtime:
            text += f", {self.dropped} dropped"
        if lat.get("count"):
            text += f"; latency decode->encode p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, " \
                    f"p99 {lat['p99_ms']:.1f} ms"
        return text
