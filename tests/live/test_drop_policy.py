"""Real-time policy on the one frame path (Runner + FrameProcessor): a deliberately slow model and a paced file.

Drops are counted and the backlog stays at zero in realtime mode; lossless mode drops nothing but queues.
Asserts on counts, never on wall-clock speed.
"""

from __future__ import annotations

import _thread
import json
from pathlib import Path

import av
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.sink import FileSink, VideoSpec
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.job import save_stats
from stylize_video.pipeline.live.source import PacedSource

SLOW_S = 0.06  # model time, 1.5x the 40 ms frame interval of the 25 fps clip


class ListSink:
    """A Sink that keeps the frames' timestamps."""

    encode_path = "test"

    def __init__(self) -> None:
        self.pts: list[int] = []
        self.closed: object = False

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        return "yuv420p"

    def open(self, spec: VideoSpec, passthrough: list) -> None:
        self.spec = spec

    def write_frame(self, frame: av.VideoFrame) -> None:
        self.pts.append(frame.pts)

    def write_packet(self, packet: av.Packet) -> None:
        raise AssertionError("no packets in realtime mode")

    def close(self, interrupted: bool = False) -> None:
        self.closed = "interrupted" if interrupted else True

    def abort(self) -> None:
        self.closed = "aborted"


def _run(clip, live, realtime: bool):
    sink = ListSink()
    stats = live.run(PacedSource(FileSource(clip)), sink, live.Negate(delay_s=SLOW_S), realtime=realtime)
    return stats, sink


def test_realtime_drops_late_frames(flat_clip, live, tmp_path):
    stats, sink = _run(flat_clip, live, realtime=True)
    assert sink.closed is True and stats.realtime and stats.paced
    assert stats.frames_in == 25
    assert stats.dropped > 0, "a model slower than the source must drop"
    assert stats.frames + stats.dropped == stats.frames_in  # every frame accounted for
    assert stats.max_backlog == 0  # the model always took the newest frame: latency cannot build up
    assert sink.pts == sorted(sink.pts) and len(set(sink.pts)) == len(sink.pts) == stats.frames
    save_stats(stats, tmp_path / "stats.json")
    d = json.loads((tmp_path / "stats.json").read_text())
    assert d["dropped"] == stats.dropped and d["latency_ms"]["count"] == stats.frames
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(d["latency_ms"])


def test_lossless_mode_never_drops_but_queues(flat_clip, live):
    stats, sink = _run(flat_clip, live, realtime=False)
    assert stats.dropped == 0 and not stats.realtime
    assert stats.frames == stats.frames_in == len(sink.pts) == 25
    assert stats.max_backlog >= 1  # frames waited behind the slow model: this is the lag realtime avoids


class _InterruptAfter(FileSource):
    """A source that delivers Ctrl-C to the main thread (as SIGINT would) after ``n`` frames."""

    n = 3

    def __iter__(self):
        for i, item in enumerate(super().__iter__()):
            if i == self.n:
                _thread.interrupt_main()
            yield item


@pytest.mark.parametrize("is_end", [True, False])
def test_ctrl_c_on_a_live_input_ends_with_a_complete_output(flat_clip, live, tmp_path, is_end):
    """Live inputs (``interrupt_is_end``): Ctrl-C is the normal end, the file is complete; files keep a partial."""
    out = tmp_path / "o.mkv"
    stats = live.run(PacedSource(_InterruptAfter(flat_clip)), FileSink(out), live.Negate(), realtime=False,
                     interrupt_is_end=is_end)
    assert stats.interrupted and 0 < stats.frames < 25
    kept = out if is_end else tmp_path / "o.partial.mkv"
    assert stats.output == str(kept) and kept.exists() and not (tmp_path / "o.partial.mkv" if is_end else out).exists()
    with av.open(str(kept)) as c:
        assert sum(1 for _ in c.decode(video=0)) == stats.frames


def test_failure_leaves_no_complete_looking_file(flat_clip, live, tmp_path):
    class Boom(live.Negate):
        def __call__(self, x):
            if self.calls == 2:
                raise StylizeError("model exploded")
            return super().__call__(x)

    with pytest.raises(StylizeError, match="model exploded"):
        live.run(FileSource(flat_clip), FileSink(tmp_path / "o.mkv"), Boom(), realtime=True)
    assert [p.name for p in Path(tmp_path).iterdir()] == []
