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
from stylize_video.pipeline.synth import make_test_clip

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


def test_application_level_set_during_a_window_kept() -> None:
    try:
        with ffmpeg_errors():
            av.logging.set_level(av.logging.WARNING)
        assert av.logging.get_level() == av.logging.WARNING
    finally:
        av.logging.set_level(None)


def test_log_off_again_after_a_window_and_a_later_application_level_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Off (PyAV's default) before a window: QUIET (-8) after it, nothing reaches ``logging``. An application
    that then turns the log on at the very level a window used (ERROR) keeps it through the next window."""
    repeats = av.logging.get_skip_repeated()
    av.logging.set_skip_repeated(False)  # (PyAV drops a line equal to the last one: the earlier tests' line)
    try:
        av.logging.set_level(None)
        with ffmpeg_errors():
            pass
        assert av.logging.get_level() == -8
        with caplog.at_level("ERROR"), pytest.raises(av.error.FFmpegError):
            _refused_vp9_in_mov()
        assert not [r for r in caplog.records if r.name.startswith("libav")]
        av.logging.set_level(av.logging.ERROR)
        with ffmpeg_errors():
            pass
        assert av.logging.get_level() == av.logging.ERROR
        with caplog.at_level("ERROR"), pytest.raises(av.error.FFmpegError):
            _refused_vp9_in_mov()
        assert any(VP9_IN_MOV in r.getMessage() for r in caplog.records if r.name.startswith("libav"))
    finally:
        av.logging.set_level(None)
        av.logging.set_skip_repeated(repeats)


def test_other_threads_lines_dropped_during_a_window(caplog: pytest.LogCaptureFixture) -> None:
    """With the application's log off, a thread without a window of its own prints nothing while another
    thread's window is open (PyAV would hand its lines to ``logging``, whose last resort prints them)."""
    opened, done = threading.Event(), threading.Event()

    def hold() -> None:
        with ffmpeg_errors():
            opened.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert opened.wait(10)
        with caplog.at_level("DEBUG"), pytest.raises(av.error.FFmpegError):
            _refused_vp9_in_mov()
    finally:
        done.set()
        holder.join(10)
    assert not [r for r in caplog.records if r.name.startswith("libav")]
    assert not fflog._LOG._open


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


_EARLY_STOP = textwrap.dedent("""
    import sys, threading, time
    import av
    from stylize_video.pipeline.io.fflog import ffmpeg_errors
    from stylize_video.pipeline.io.items import FileSourceOptions, VideoItem
    from stylize_video.pipeline.io.source import FileSource

    clip, mode = sys.argv[1], sys.argv[2]
    stop = False

    def windows():  # another thread opening outputs all the time (a window open most of the time)
        while not stop:
            with ffmpeg_errors():
                time.sleep(0.02)

    if mode == "window-elsewhere":
        threading.Thread(target=windows, daemon=True).start()
    else:
        with ffmpeg_errors():
            pass
    for _ in range(300):
        if mode == "after-a-window":  # plain PyAV, as the benchmarks' decode ceiling
            with av.open(clip) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame threads, as the pipeline's file inputs
                for i, frame in enumerate(container.decode(stream)):
                    if i == 3:
                        break  # the decoder is freed with frames in flight
        else:  # our source, stopped early (--duration, a stop) and closed
            source = FileSource(clip, FileSourceOptions(thread_type="AUTO"))
            frames = 0
            for item in source:
                frames += isinstance(item, VideoItem)
                if frames == 4:
                    break
            source.close()
            del source, item
    stop = True
    print("done")
""")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 30 frames: long enough for frames to be in flight at the stop (with 8, our source had none left)
    return make_test_clip(tmp_path_factory.mktemp("fflog") / "clip.mp4", frames=30, audio=False)


@pytest.mark.parametrize("mode", ["after-a-window", "window-elsewhere"])
def test_frame_threaded_decode_stopped_early_does_not_hang(small_clip: Path, mode: str) -> None:
    """The CI hang: PyAV's log callback in (left at PANIC after a window, which still lets error lines
    through; or a window open in another thread) and a frame-threaded decoder freed with frames in flight
    deadlocked on the GIL. The code before the fix hung in both modes (after a window within 10 to 90 of
    these loops; with a window elsewhere when the source was closed without parking its decoder's threads).
    Runs in its own interpreter so that a regression fails, not hangs."""
    try:
        run = subprocess.run([sys.executable, "-c", _EARLY_STOP, str(small_clip), mode],
                             check=False, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"frame-threaded decode stopped early ({mode}) hung: a GIL deadlock with PyAV's log callback")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done" and "av.logging" not in run.stderr
