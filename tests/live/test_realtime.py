"""Hand-off policy, pacing and latency statistics (units; the frame path itself is in test_drop_policy)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from stylize_video.pipeline.latency import LatencyStats, percentile
from stylize_video.pipeline.live.realtime import Pacer
from stylize_video.pipeline.slot import LatestSlot
from stylize_video.pipeline.stats import RunStats


def test_latest_slot_keeps_newest_counts_and_returns_drops():
    slot: LatestSlot[int] = LatestSlot()
    replaced = [slot.put(i) for i in range(5)]
    assert replaced == [None, 0, 1, 2, 3]  # the caller gets each replaced item back (to recycle its buffer)
    assert slot.get(timeout=0) == 4 and slot.dropped == 4
    assert slot.get(timeout=0.01) is None and not slot.closed  # empty, still open
    slot.put(7)
    slot.close()
    assert slot.put(8) == 8  # refused after close, handed back
    assert slot.get() == 7 and slot.get() is None and slot.dropped == 4 and slot.closed


def test_latest_slot_wakes_a_waiting_consumer():
    slot: LatestSlot[int] = LatestSlot()
    got: list[int | None] = []
    t = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    t.start()
    slot.put(3)
    t.join(5)
    assert got == [3]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []


def _pacer(speed: float = 1.0) -> tuple[Pacer, FakeClock]:
    clock = FakeClock()
    stop = threading.Event()

    def wait(dt: float) -> bool:
        clock.slept.append(round(dt, 6))
        clock.now += dt
        return False

    stop.wait = wait  # type: ignore[method-assign]
    return Pacer(speed, stop=stop, clock=lambda: clock.now), clock


def test_pacer_follows_timestamps():
    pacer, clock = _pacer(speed=2.0)
    for t in (5.0, 5.1, 5.3):
        pacer.wait(t)
    assert clock.slept == [0.05, 0.1]  # media deltas / speed, anchored at the first frame
    clock.now += 1.0  # we fell behind: no sleeping to catch up
    pacer.wait(5.4)
    assert clock.slept == [0.05, 0.1]


def test_pacer_resyncs_on_jumps():
    pacer, clock = _pacer()
    pacer.wait(10.0)
    pacer.wait(50.0)  # forward jump beyond resync_s: re-anchor, no 40 s sleep
    pacer.wait(2.0)  # backwards (loop): re-anchor
    pacer.wait(2.04)
    assert clock.slept == [0.04]
    pacer.wait(None)
    with pytest.raises(ValueError):
        Pacer(0)


def test_percentile_matches_numpy():
    values = sorted(np.random.default_rng(0).random(101).tolist())
    for q in (0, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    with pytest.raises(ValueError):
        percentile([], 50)


def test_run_stats_report_drops_and_latency():
    lat = LatencyStats()
    for ms in range(1, 8):
        lat.add(ms / 1000)
    stats = RunStats(frames=7, frames_in=10, dropped=3, wall_s=1.0, fps=7.0, realtime=True,
                     latency_ms=lat.summary())
    assert stats.latency_ms["p50_ms"] == 4.0 and stats.latency_ms["count"] == 7
    text = stats.summary()
    assert "3 of 10 frames dropped" in text and "p99" in text
    assert {"dropped", "frames_in", "latency_ms", "realtime", "paced"} <= set(stats.to_dict())
    assert LatencyStats().summary() == {"count": 0}
