"""Batch x streams throughput, run on the CPU with fake backends (the streams become no-ops)."""

from __future__ import annotations

from stylize_video.benchmarks.throughput import run_throughput


def test_every_point_measured_and_backends_closed(fake_backend_cls) -> None:
    made = []

    def make():
        made.append(fake_backend_cls(max_batch=2))
        return made[-1]

    points = run_throughput(make, [1, 2, 4], [1, 2], 24, 32, iters=3, warmup=1)
    assert len(made) == 2 and all(b.closed for b in made)
    assert [(p.batch, p.streams) for p in points] == [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)]
    ok = [p for p in points if p.status == "ok"]
    assert all(p.frames == 3 * p.batch * p.streams and p.fps > 0 for p in ok)
    failed = [p for p in points if p.status == "failed"]
    assert [(p.batch, p.streams) for p in failed] == [(4, 1), (4, 2)]
    assert "above the profile's max" in failed[0].reason
