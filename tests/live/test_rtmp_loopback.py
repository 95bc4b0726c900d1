"""FLV over RTMP: push to FFmpeg's own RTMP listen mode (no server needed) in a receiver subprocess.

The receiver must be another process: PyAV holds the GIL while an output connects, so an in-process
FFmpeg receiver (whose timeout callback needs the GIL) would deadlock. OBS or a media server is always
another process anyway.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.live.outputs import parse_output
from stylize_video.pipeline.live.sinks import StreamSink

_RECEIVER = """
import sys, av, numpy as np
from stylize_video.pipeline.live.vcam import frame_to_rgb
url, out = sys.argv[1], sys.argv[2]
with av.open(url, format="flv", options={"listen": "1"}, timeout=(20, 2)) as c:
    frames = []
    try:
        for f in c.decode(video=0):
            frames.append(frame_to_rgb(f))
    except (av.error.ExitError, av.error.EOFError, av.error.OSError):  # publisher hung up
        pass
np.save(out, np.stack(frames))
"""


def _listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (Linux /proc/net/tcp, state 0A), without connecting to it."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if int(local.split(":")[1], 16) == port and state == "0A":
            return True
    return False


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp to see the listener")
def test_rtmp_flv_push(flat_clip, live, tcp_port, tmp_path):
    url, dump = f"rtmp://127.0.0.1:{tcp_port}/live/test", tmp_path / "frames.npy"
    rx = subprocess.Popen([sys.executable, "-c", _RECEIVER, url, str(dump)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not _listening(tcp_port) and time.monotonic() < deadline and rx.poll() is None:
            time.sleep(0.05)
        assert _listening(tcp_port), "receiver never listened"
        spec = parse_output(url)
        assert spec.format == "flv"
        stats = live.run(FileSource(flat_clip), StreamSink(spec), live.Negate())
        assert rx.wait(20) == 0, rx.stderr.read().decode()[-500:]
    finally:
        rx.kill()
        rx.wait()
    received = np.load(dump)
    assert stats.frames == 25 and len(received) == 25  # TCP underneath: lossless
    source = live.rgb(flat_clip)
    err = np.abs(received.astype(np.int16) - (255 - np.stack(source).astype(np.int16))).mean()
    assert err < 12.0
