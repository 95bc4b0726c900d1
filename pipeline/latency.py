"""Per-frame latency (decode -> encode) percentiles, reported by ``stylize_video.pipeline.stats.RunStats.latency_ms``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


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
