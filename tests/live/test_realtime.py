"""Hand-off policies, pacing and latency statistics."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pipeline.live.latency import LatencyStats, LiveReport, percentile
from pipeline.live.realtime import BoundedQueue, LatestSlot, Pacer


def test_latest_slot_keeps_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0) == 4 and slot.dropped == 4
    assert slot.get(timeout=0.01) is None  # empty, still open
    slot.put(7)
    slot.close()
    slot.put(8)  # ignored after close
    assert slot.get() == 7 and slot.get() is None and slot.dropped == 4


def test_bounded_queue_blocks_instead_of_dropping():
    q: BoundedQueue[int] = BoundedQueue(2)
    q.put(0)
    q.put(1)
    t = threading.Thread(target=q.put, args=(2,))
    t.start()
    t.join(0.1)
    assert t.is_alive()  # full: the producer waits
    assert q.get() == 0
    t.join(2)
    assert not t.is_alive() and [q.get(), q.get()] == [1, 2] and q.dropped == 0
    with pytest.raises(ValueError):
        BoundedQueue(0)


def test_abort_unblocks_producer():
    q: BoundedQueue[int] = BoundedQueue(1)
    q.put(0)
    t = threading.Thread(target=q.put, args=(1,))
    t.start()
    q.abort()
    t.join(2)
    assert not t.is_alive() and q.get(timeout=0) is None


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


def test_report_summary():
    report = LiveReport(frames_in=10, frames_out=7, dropped=3, wall_s=1.0, realtime=True)
    for ms in range(1, 8):
        report.latency.add(ms / 1000)
    d = report.to_dict()
    assert d["fps"] == 7.0 and d["latency_ms"]["p50_ms"] == 4.0 and d["latency_ms"]["count"] == 7
    assert "3 dropped" in report.summary_line() and "p99" in report.summary_line()
    assert LatencyStats().summary() == {"count": 0}
