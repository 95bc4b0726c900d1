"""Stream generated clips through the one frame path to UDP / TCP / stdout on 127.0.0.1 and read them back.

Frames are read back with PyAV and converted to RGB with our own matrices (``stylize_video.pipeline.colour``), like the
pipeline does; every frame must be the negation (255 - x) of a source frame.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from stylize_video.pipeline.backends.torch import TorchBackend
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.live.inputs import parse_input
from stylize_video.pipeline.live.outputs import parse_output
from stylize_video.pipeline.live.sinks import StreamSink
from stylize_video.pipeline.live.source import LiveSource, PacedSource
from stylize_video.pipeline.synth import make_test_clip

UDP_MIN_FRACTION = 0.9  # stated tolerance: loopback UDP may lose a few datagrams under load
PIXEL_TOL = 12.0  # mean |error| after two 4:2:0 round trips and x264 crf 23 on a 64x48 clip


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


def _read_stream(url: str, out: list[av.VideoFrame], errors: list[BaseException], **kw) -> None:
    try:
        with av.open(url, format="mpegts", timeout=(10.0, 1.5), **kw) as c:
            try:
                for f in c.decode(video=0):
                    out.append(f)  # noqa: PERF402 - keep what arrived before a read timeout
            except av.error.ExitError:
                pass  # the read timeout: sender finished (UDP has no end-of-stream)
    except BaseException as exc:  # noqa: BLE001 - reported in the test thread
        errors.append(exc)


def _udp_receive(port: int) -> tuple[threading.Thread, list[av.VideoFrame], list[BaseException]]:
    received: list[av.VideoFrame] = []
    errors: list[BaseException] = []
    rx = threading.Thread(target=_read_stream, args=(f"udp://127.0.0.1:{port}", received, errors),
                          kwargs={"options": {"overrun_nonfatal": "1", "analyzeduration": "500000"}}, daemon=True)
    rx.start()
    time.sleep(0.5)  # the receiver binds its socket before the first datagram
    return rx, received, errors


def test_udp_mpegts_loopback(flat_clip, live, udp_port):
    rx, received, errors = _udp_receive(udp_port)
    stats = live.run(PacedSource(FileSource(flat_clip), speed=2.0), StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}")),
                     live.Negate(), realtime=True)
    rx.join(15)
    assert not rx.is_alive() and not errors, errors
    assert stats.frames + stats.dropped == stats.frames_in == 25
    assert len(received) >= UDP_MIN_FRACTION * stats.frames
    assert int(received[0].colorspace) == 1  # BT.709 tag carried from the input (64x48 would be guessed 601)
    _check_stylized(live.rgb(received), live.rgb(flat_clip))
    assert stats.latency_ms["count"] == stats.frames and stats.output.startswith("udp://")


@pytest.mark.parametrize(("device", "realtime"), [
    ("cpu", False),
    pytest.param("cuda", True, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_udp_colour_round_trip_through_pipeline_colour(tmp_path, live, udp_port, device, realtime):
    """BT.709 input (small: a guess would say BT.601), identity model, lossless x264 over UDP: PSNR >= 40 dB.

    Proves live output colour goes through our matrices with the input's tags, like the file path. On CUDA
    it runs the realtime slot with pinned buffers and the processor's stream.
    """
    src = make_test_clip(tmp_path / "709.mkv", colorspace="bt709", color_range="tv", audio=False, frames=25)
    rx, received, errors = _udp_receive(udp_port)
    sink = StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}"), EncoderOptions(codec="libx264", crf=0))
    backend = live.Identity() if device == "cpu" else TorchBackend(torch.nn.Identity(), device, "fp32")
    stats = live.run(PacedSource(FileSource(src), speed=2.0), sink, backend, realtime=realtime)
    rx.join(15)
    assert not errors and stats.frames + stats.dropped == 25 and stats.device.startswith(device)
    assert len(received) >= UDP_MIN_FRACTION * stats.frames
    with av.open(str(src)) as c:
        source = list(c.decode(video=0))
    for got in received:
        assert (int(got.colorspace), int(got.color_range)) == (1, 1)
        psnrs = [min(live.psnr(a, b) for a, b in zip(live.planes(s), live.planes(got))) for s in source]
        assert max(psnrs) >= 40, psnrs


def test_tcp_listen_mpegts_loopback(flat_clip, live, tcp_port):
    """Our output listens (``?listen``); the test connects as the client. TCP is lossless: every frame arrives."""
    result: dict = {}

    def serve() -> None:
        try:
            sink = StreamSink(parse_output(f"tcp://127.0.0.1:{tcp_port}?listen"), open_timeout=10)
            result["stats"] = live.run(FileSource(flat_clip), sink, live.Negate())
        except BaseException as exc:  # noqa: BLE001 - reported in the test thread
            result["error"] = exc

    tx = threading.Thread(target=serve, daemon=True)
    tx.start()
    received: list[av.VideoFrame] = []
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
    stats = result["stats"]
    assert stats.dropped == 0 and stats.frames == stats.frames_in == 25
    assert len(received) == 25
    _check_stylized(live.rgb(received), live.rgb(flat_clip))


_STDOUT_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from conftest import NegateBackend, run_job
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.live.outputs import parse_output
from stylize_video.pipeline.live.sinks import StreamSink
stats = run_job(FileSource({clip!r}), StreamSink(parse_output("-", output_format={fmt!r})), NegateBackend())
print(stats.summary(), file=sys.stderr)
"""


def test_stdout_stream(flat_clip, live):
    """``-`` writes a pipeable stream on stdout and nothing else (the summary goes to stderr)."""
    script = _STDOUT_SCRIPT.format(tests=str(Path(__file__).parent), clip=str(flat_clip), fmt="mpegts")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=True)
    assert b"25 frames in" in proc.stderr
    with av.open(io.BytesIO(proc.stdout), format="mpegts") as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 25
    _check_stylized(live.rgb(frames), live.rgb(flat_clip))


_STDIN_SCRIPT = """
import sys
import numpy as np
from stylize_video.pipeline.live.inputs import parse_input
from stylize_video.pipeline.live.source import LiveSource
from stylize_video.pipeline.live.vcam import frame_to_rgb
from stylize_video.pipeline.io.source import VideoItem
source = LiveSource(parse_input("-", input_format="mpegts"))
frames = [frame_to_rgb(i.frame) for i in source if isinstance(i, VideoItem)]
np.save(sys.argv[1], np.stack(frames))
print(source.stats.decoded, source.info.colour.matrix, file=sys.stderr)
"""


def test_stdin_input(flat_clip, tmp_path, live):
    """``-`` reads a piped MPEG-TS (e.g. ``ffmpeg ... -f mpegts - | stylize-video - ...``)."""
    ts = tmp_path / "in.ts"
    sink = StreamSink(parse_output(str(ts), output_format="mpegts"), EncoderOptions(codec="libx264", crf=0))
    live.run(FileSource(flat_clip), sink, live.Identity())
    dump = tmp_path / "frames.npy"
    proc = subprocess.run([sys.executable, "-c", _STDIN_SCRIPT, str(dump)], input=ts.read_bytes(),
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr.decode().startswith("25 bt709"), proc.stderr.decode()[-500:]
    got = np.load(dump)
    source = live.rgb(flat_clip)
    assert len(got) == 25
    assert max(np.abs(g.astype(np.int16) - s).mean() for g, s in zip(got, source)) < 2.0


def test_udp_live_input(flat_clip, live, udp_port):
    """``LiveSource`` on a live UDP input (low-latency options, realtime by default); silence ends it."""
    opened: dict = {}

    def open_source() -> None:
        try:  # opening blocks until the stream is probed and its first frame decoded
            opened["source"] = LiveSource(parse_input(f"udp://127.0.0.1:{udp_port}"), read_timeout=1.0)
        except BaseException as exc:  # noqa: BLE001 - reported in the test thread
            opened["error"] = exc

    rx = threading.Thread(target=open_source, daemon=True)
    rx.start()
    time.sleep(0.5)  # bound before the first datagram
    # The sender runs to completion; the receiver's socket buffers meanwhile.
    live.run(PacedSource(FileSource(flat_clip), speed=2.0), StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}")),
             live.Negate())
    rx.join(10)
    assert "error" not in opened, opened.get("error")
    source = opened["source"]
    assert source.live and source.info.frames is None
    received: list[av.VideoFrame] = []

    class Keep(ListSinkBase):
        def write_frame(self, frame: av.VideoFrame) -> None:
            received.append(frame)

    stats = live.run(source, Keep(), live.Negate(), realtime=source.live)
    assert stats.frames_in >= UDP_MIN_FRACTION * 25 and stats.realtime
    assert stats.frames + stats.dropped == stats.frames_in and stats.frames == len(received) >= 1
    # negated twice: the received frames are the source again
    _check_stylized(live.rgb(received), [255 - s for s in live.rgb(flat_clip)])


class ListSinkBase:
    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        return "yuv420p"

    def open(self, spec, passthrough) -> None:
        pass

    def write_packet(self, packet) -> None:
        pass

    def close(self, interrupted: bool = False) -> None:
        return None

    def abort(self) -> None:
        pass
