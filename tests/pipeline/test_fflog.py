"""FFmpeg log windows: the reason collected, PyAV's callback out again after the last window."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import av
import av.logging
import pytest
from stylize_video.pipeline.io import fflog
from stylize_video.pipeline.io.fflog import ffmpeg_errors, ffmpeg_log

VP9_IN_MOV = "vp9 only supported in MP4"


def _refused_vp9_in_mov() -> None:
    with av.open(io.BytesIO(), "w", format="mov") as out:
        s = out.add_stream("libvpx-vp9", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        out.start_encoding()


def _reason_of_refused_vp9_in_mov() -> str:
    with ffmpeg_errors() as log:
        with pytest.raises(av.error.FFmpegError) as caught:
            _refused_vp9_in_mov()
        return log.reason(caught.value)


def test_reason_is_ffmpegs_own_line() -> None:
    assert VP9_IN_MOV in _reason_of_refused_vp9_in_mov()


def test_reason_falls_back_to_the_exception_text() -> None:
    with ffmpeg_errors() as log:
        assert log.lines == []
        assert log.reason(OSError(2, "No such file or directory")) == "No such file or directory"


def test_application_level_kept_and_restored() -> None:
    try:
        av.logging.set_level(av.logging.VERBOSE)
        with ffmpeg_errors():
            assert av.logging.get_level() == av.logging.VERBOSE  # never below the application's own level
        assert av.logging.get_level() == av.logging.VERBOSE
    finally:
        av.logging.set_level(None)  # PyAV's default (no FFmpeg thread runs here, so no race with its callback)


def test_overlapping_windows_in_two_threads() -> None:
    """Thread A opens a window, B opens one, A closes: B still collects its own error lines (a window
    closing must not take the log out from under another); after both, no window is counted."""
    a_open, b_open, a_closed = threading.Event(), threading.Event(), threading.Event()
    got: dict[str, object] = {}

    def a() -> None:
        with ffmpeg_log(av.logging.INFO):
            a_open.set()
            b_open.wait(10)
        a_closed.set()

    def b() -> None:
        a_open.wait(10)
        with ffmpeg_errors() as log:
            b_open.set()
            a_closed.wait(10)
            got["level"] = av.logging.get_level()
            try:
                _refused_vp9_in_mov()
            except av.error.FFmpegError as exc:
                got["reason"] = log.reason(exc)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got["level"] == av.logging.ERROR  # A's INFO window closed, B's ERROR one still open
    assert VP9_IN_MOV in str(got["reason"])
    assert not fflog._LOG._open


_EARLY_BREAK = textwrap.dedent("""
    import sys
    import av
    import av.logging
    from stylize_video.pipeline.io.fflog import ffmpeg_errors

    clip = sys.argv[1]
    with ffmpeg_errors():
        pass
    for _ in range(300):
        with av.open(clip) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads, as the pipeline's file inputs
            for i, frame in enumerate(container.decode(stream)):
                if i == 3:
                    break  # the decoder is freed with frames in flight
    print("done")
""")


def test_early_break_frame_threaded_decode_after_a_window_does_not_hang(tmp_path: Path) -> None:
    """The CI hang: after a window, PyAV's callback stayed in (at PANIC, which still lets error lines
    through), and a frame-threaded decoder freed with frames in flight deadlocked on the GIL (seen here
    within 10 to 90 of these loops). Runs in its own interpreter so that a regression fails, not hangs."""
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(16 + 20 * i) % 235]) * plane.buffer_size)
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    try:
        run = subprocess.run([sys.executable, "-c", _EARLY_BREAK, str(clip)],
                             check=False, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("frame-threaded decode left early after an ffmpeg_errors() block hung (GIL deadlock)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done" and "av.logging" not in run.stderr
