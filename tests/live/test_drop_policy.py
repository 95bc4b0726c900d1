"""Real-time policy with a deliberately slow model and a paced file: drops are counted, backlog stays at zero."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.live.inputs import parse_input
from pipeline.live.loop import LiveConfig, run_live, write_stats_json
from pipeline.live.outputs import parse_output
from pipeline.live.sinks import StreamSink
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

    def abort(self) -> None:
        self.closed = "aborted"


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


def _fail_on_third(exc: BaseException):
    calls = []

    def process(rgb: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return rgb
    return process


def test_ctrl_c_ends_the_run_with_a_complete_output(flat_clip, tmp_path):
    spec = parse_output(str(tmp_path / "o.mkv"))
    report = run_live(FrameReader(parse_input(str(flat_clip))), _fail_on_third(KeyboardInterrupt()),
                      StreamSink(spec, fps=25), LiveConfig(realtime=False))
    assert report.interrupted and report.frames_out == 2
    with av.open(spec.target) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2
    assert not Path(spec.partial).exists()


def test_failure_leaves_no_complete_looking_file(flat_clip, tmp_path):
    spec = parse_output(str(tmp_path / "o.mkv"))
    with pytest.raises(RuntimeError, match="boom"):
        run_live(FrameReader(parse_input(str(flat_clip))), _fail_on_third(RuntimeError("boom")),
                 StreamSink(spec, fps=25), LiveConfig(realtime=False))
    assert not Path(spec.target).exists() and not Path(spec.partial).exists()
