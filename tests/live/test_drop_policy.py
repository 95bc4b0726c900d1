"""Real-time policy with a deliberately slow model and a paced file: drops are counted, backlog stays at zero."""

from __future__ import annotations

import json

import numpy as np

from pipeline.live.inputs import parse_input
from pipeline.live.loop import LiveConfig, run_live, write_stats_json
from pipeline.live.source import FrameReader
from pipeline.stylizer import Stylizer

SLOW_S = 0.06  # model time, 1.5x the 40 ms frame interval of the 25 fps clip


class ListSink:
    def __init__(self) -> None:
        self.frames: list[tuple[np.ndarray, float]] = []
        self.closed = False

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        self.frames.append((rgb, time_s))

    def close(self) -> None:
        self.closed = True


def _run(clip, negate, realtime: bool):
    sink = ListSink()
    reader = FrameReader(parse_input(str(clip)), pace=True)
    with Stylizer(negate(delay_s=SLOW_S)) as stylizer:
        report = run_live(reader, stylizer, sink, LiveConfig(realtime=realtime))
    return report, sink


def test_realtime_drops_late_frames(flat_clip, negate, tmp_path):
    report, sink = _run(flat_clip, negate, realtime=True)
    assert sink.closed
    assert report.frames_in == 25
    assert report.dropped > 0, "a model slower than the source must drop"
    assert report.frames_out + report.dropped == report.frames_in  # every frame accounted for
    assert report.max_backlog == 0  # the model always took the newest frame: latency cannot build up
    times = [t for _, t in sink.frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    d = json.loads(write_stats_json(report, tmp_path / "stats.json").read_text())
    assert d["dropped"] == report.dropped and d["latency_ms"]["count"] == report.frames_out
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(d["latency_ms"])


def test_lossless_mode_never_drops_but_queues(flat_clip, negate):
    report, sink = _run(flat_clip, negate, realtime=False)
    assert report.dropped == 0
    assert report.frames_out == report.frames_in == len(sink.frames) == 25
    assert report.max_backlog >= 1  # frames waited behind the slow model: this is the lag realtime avoids
