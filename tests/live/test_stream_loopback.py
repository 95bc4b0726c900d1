"""Stream a generated clip through the live path to UDP / TCP / stdout on 127.0.0.1 and read it back with PyAV."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import av
import numpy as np
import pytest

from pipeline.live.frames import frame_to_rgb
from pipeline.live.inputs import parse_input
from pipeline.live.loop import LiveConfig, run_live
from pipeline.live.outputs import parse_output
from pipeline.live.sinks import StreamSink
from pipeline.live.source import FrameReader
from pipeline.stylizer import Stylizer

UDP_MIN_FRACTION = 0.9  # stated tolerance: loopback UDP may lose a few datagrams under load
PIXEL_TOL = 12.0  # mean |error| after two 4:2:0 round trips and x264 crf 23 on a 64x48 clip


def _source_rgb(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [frame_to_rgb(f) for f in c.decode(video=0)]


def _check_stylized(received: list[np.ndarray], source: list[np.ndarray]) -> None:
    """Each received frame is the negation of some source frame, in order, and not the source itself."""
    expected = [255 - s.astype(np.int16) for s in source]
    last = -1
    for got in received:
        errs = [np.abs(got.astype(np.int16) - e).mean() for e in expected]
        best = int(np.argmin(errs))
        assert errs[best] < PIXEL_TOL, f"frame not stylized as expected (mean error {errs[best]:.1f})"
        assert np.abs(got.astype(np.int16) - source[best]).mean() > 50, "frame arrived unstylized"
        assert best > last, "frames out of order"
        last = best


def _read_stream(url: str, out: list[np.ndarray], errors: list[BaseException], **kw) -> None:
    try:
        with av.open(url, format="mpegts", timeout=(10.0, 1.5), **kw) as c:
            try:
                for f in c.decode(video=0):
                    out.append(frame_to_rgb(f))
            except av.error.ExitError:
                pass  # the read timeout: sender finished (UDP has no end-of-stream)
    except BaseException as exc:  # noqa: BLE001 - reported in the test thread
        errors.append(exc)


def test_udp_mpegts_loopback(flat_clip, negate, udp_port):
    received: list[np.ndarray] = []
    errors: list[BaseException] = []
    rx = threading.Thread(target=_read_stream, args=(f"udp://127.0.0.1:{udp_port}", received, errors),
                          kwargs={"options": {"overrun_nonfatal": "1"}}, daemon=True)
    rx.start()
    time.sleep(0.5)  # the receiver binds its socket before the first datagram
    reader = FrameReader(parse_input(str(flat_clip)), pace=True, speed=2.0)
    sink = StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}"), fps=reader.fps)
    with Stylizer(negate()) as stylizer:
        report = run_live(reader, stylizer, sink, LiveConfig(realtime=True))
    rx.join(15)
    assert not rx.is_alive() and not errors, errors
    assert report.frames_out + report.dropped == report.frames_in == 25
    assert len(received) >= UDP_MIN_FRACTION * report.frames_out
    _check_stylized(received, _source_rgb(flat_clip))
    assert report.latency.summary()["count"] == report.frames_out


def test_tcp_listen_mpegts_loopback(flat_clip, negate, tcp_port):
    """Our output listens (``?listen``); the test connects as the client. TCP is lossless: every frame arrives."""
    result: dict = {}

    def serve() -> None:
        try:
            reader = FrameReader(parse_input(str(flat_clip)))
            sink = StreamSink(parse_output(f"tcp://127.0.0.1:{tcp_port}?listen"), fps=reader.fps, open_timeout=10)
            with Stylizer(negate()) as stylizer:
                result["report"] = run_live(reader, stylizer, sink, LiveConfig(realtime=False))
        except BaseException as exc:  # noqa: BLE001 - reported in the test thread
            result["error"] = exc

    tx = threading.Thread(target=serve, daemon=True)
    tx.start()
    received: list[np.ndarray] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # connect once the server listens
        errors.clear()
        _read_stream(f"tcp://127.0.0.1:{tcp_port}", received, errors)
        if not errors:
            break
        time.sleep(0.1)
    tx.join(15)
    assert not errors and "error" not in result, (errors, result.get("error"))
    report = result["report"]
    assert report.dropped == 0 and report.frames_out == report.frames_in == 25
    assert len(received) == 25
    _check_stylized(received, _source_rgb(flat_clip))


_STDOUT_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import NegateBackend
from pipeline.live import FrameReader, LiveConfig, StreamSink, parse_input, parse_output, run_live
from pipeline.stylizer import Stylizer
reader = FrameReader(parse_input({clip!r}))
sink = StreamSink(parse_output("-", output_format={fmt!r}), fps=reader.fps)
report = run_live(reader, Stylizer(NegateBackend()), sink, LiveConfig(realtime=False))
print(report.summary_line(), file=sys.stderr)
"""


@pytest.mark.parametrize("fmt", ["mpegts"])  # nut is the same path (one subprocess costs ~4 s of torch import)
def test_stdout_stream(flat_clip, fmt):
    """``-`` writes a pipeable stream on stdout and nothing else (the summary goes to stderr)."""
    from pathlib import Path

    script = _STDOUT_SCRIPT.format(tests=str(Path(__file__).parent), clip=str(flat_clip), fmt=fmt)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=True)
    assert b"25 frames out of 25" in proc.stderr
    with av.open(io.BytesIO(proc.stdout), format=fmt) as c:
        frames = [frame_to_rgb(f) for f in c.decode(video=0)]
    assert len(frames) == 25
    _check_stylized(frames, _source_rgb(flat_clip))


_STDIN_SCRIPT = """
import sys
import numpy as np
from pipeline.live import FrameReader, LatestSlot, parse_input
reader = FrameReader(parse_input("-", input_format="mpegts"))
frames = []
class Collect(LatestSlot):
    def put(self, item):
        frames.append(item.rgb)
box = Collect()
reader.start(box)
reader.wait(30)
np.save(sys.argv[1], np.stack(frames))
print(reader.produced, reader.error, file=sys.stderr)
"""


def test_stdin_input(flat_clip, tmp_path):
    """``-`` reads a piped MPEG-TS (e.g. ``ffmpeg ... -f mpegts - | stylize-video - ...``); no torch needed."""
    ts = tmp_path / "in.ts"
    reader = FrameReader(parse_input(str(flat_clip)))
    run_live(reader, lambda rgb: rgb, StreamSink(parse_output(str(ts)), fps=reader.fps), LiveConfig(realtime=False))
    dump = tmp_path / "frames.npy"
    proc = subprocess.run([sys.executable, "-c", _STDIN_SCRIPT, str(dump)], input=ts.read_bytes(),
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr.decode().startswith("25 None"), proc.stderr.decode()[-500:]
    got = np.load(dump)
    source = _source_rgb(flat_clip)
    assert len(got) == 25
    assert max(np.abs(g.astype(np.int16) - s).mean() for g, s in zip(got, source)) < PIXEL_TOL


def test_udp_live_input(flat_clip, negate, udp_port):
    """Our reader on a live UDP input (default low-latency options, realtime by default); silence ends it."""
    opened: dict = {}

    def open_reader() -> None:
        try:  # av.open blocks until the stream has been probed
            opened["reader"] = FrameReader(parse_input(f"udp://127.0.0.1:{udp_port}"), read_timeout=1.0)
        except BaseException as exc:  # noqa: BLE001 - reported in the test thread
            opened["error"] = exc

    rx = threading.Thread(target=open_reader, daemon=True)
    rx.start()
    time.sleep(0.5)  # bound before the first datagram
    sender = FrameReader(parse_input(str(flat_clip)), pace=True, speed=2.0)
    run_live(sender, lambda rgb: rgb, StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}"), fps=sender.fps),
             LiveConfig(realtime=False))  # the sender runs to completion; the receiver buffered meanwhile
    rx.join(10)
    assert "error" not in opened, opened.get("error")
    reader = opened["reader"]
    assert reader.spec.live
    received: list[np.ndarray] = []
    with Stylizer(negate()) as stylizer:
        report = run_live(reader, stylizer, _ListSink(received), LiveConfig(realtime=reader.spec.live))
    assert report.frames_in >= UDP_MIN_FRACTION * 25
    assert report.frames_out + report.dropped == report.frames_in and report.frames_out == len(received) >= 1
    _check_stylized(received, _source_rgb(flat_clip))


class _ListSink:
    def __init__(self, out: list[np.ndarray]) -> None:
        self.out = out

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        self.out.append(rgb)

    def close(self) -> None:
        pass

    abort = close
