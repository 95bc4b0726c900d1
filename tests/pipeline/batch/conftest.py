"""Fixtures for the stylize-batch tests: three real clips, each processed once by a single stylize-video run.

The clips: ``a.mp4`` VFR with AAC audio, ``b.mkv`` with B-frames (decode order != presentation order) and audio,
``c.mov`` without audio, rotated 90 degrees. Each has a keyframe about every 0.4 s, so ``--segment-seconds 1``
cuts it into 2-3 segments. The reference outputs use the same lossless encoder (libx264 ``--crf 0``: lossless for
these 8-bit 4:2:0 inputs, not at 10 bits, where test_segments uses FFV1), so a frame-exact batch output decodes to
exactly the same pixels.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from stylize_video.pipeline.cli import main as stylize_video
from stylize_video.pipeline.synth import make_test_clip

LOSSLESS = ["--crf", "0"]
CLIPS = {
    "a.mp4": {"frames": 75, "vfr": True, "audio": True, "gop": 10},
    "b.mkv": {"frames": 60, "bframes": 2, "audio": True, "gop": 12},
    "c.mov": {"frames": 50, "audio": False, "gop": 8, "rotation": 90},
}
SEGMENTS = {"a.mp4": 3, "b.mkv": 2, "c.mov": 2}  # at --segment-seconds 1


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the three clips."""
    root = tmp_path_factory.mktemp("batch-in")
    for name, kw in CLIPS.items():
        make_test_clip(root / name, **kw)
    return root


@pytest.fixture(scope="session")
def singles(clips: Path, checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each clip through one ``stylize-video`` run with the lossless encoder."""
    out = tmp_path_factory.mktemp("batch-single")
    refs = {}
    for name in CLIPS:
        refs[name] = out / name
        assert stylize_video([str(clips / name), str(refs[name]), "--checkpoint", str(checkpoints["style"]),
                              "--quiet", *LOSSLESS]) == 0
    return refs


def video_of(path: Path) -> dict:
    """Everything a frame-exact output must share with the reference: every decoded frame's timestamp and planes
    (PyAV's default decode), the audio packets, the stream's rotation and colour tags."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        tags = (cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc, cc.pix_fmt)
        frames = [(f.pts, f.time_base, f.rotation, [np.asarray(p).tobytes() for p in f.planes]) for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio = [(p.pts, p.dts, bytes(p)) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return {"frames": frames, "audio": audio, "tags": tags}


def assert_frame_exact(out: Path, ref: Path) -> None:
    a, b = video_of(out), video_of(ref)
    assert [f[:3] for f in a["frames"]] == [f[:3] for f in b["frames"]]  # same timestamps and rotation, in order
    assert all(x[3] == y[3] for x, y in zip(a["frames"], b["frames"]))  # same pixels
    assert a["audio"] == b["audio"]
    assert a["tags"] == b["tags"]


def batch_args(clips: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [str(clips), "--out-dir", str(out), "--checkpoint", str(checkpoint), "--segment-seconds", "1",
            *LOSSLESS, *extra]


class SegmentKiller(threading.Thread):
    """Kills (SIGKILL) the first worker seen writing a segment: a segment file under its temporary name
    (``.NAME.PID@HOST.inprogress``, written by the worker process PID) exists while the worker is mid-segment."""

    def __init__(self, work: Path) -> None:
        super().__init__(daemon=True)
        self.work, self.killed, self.stop = work, None, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.killed is None:
            for tmp in self.work.glob("segments/*/.*.nut.*.inprogress"):
                pid = int(re.search(r"\.(\d+)(@[^/]*)?\.inprogress$", tmp.name).group(1))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.killed = pid
                return
            time.sleep(0.01)


@pytest.fixture(scope="session")
def kit():
    """The helpers above (a fixture: test modules are imported with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(CLIPS=CLIPS, SEGMENTS=SEGMENTS, SegmentKiller=SegmentKiller, exact=assert_frame_exact,
                           args=batch_args, video_of=video_of)
