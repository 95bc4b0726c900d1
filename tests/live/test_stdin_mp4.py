"""An MP4 on stdin (``cat clip.mp4 | stylize-video - ...``): one whose index (moov) comes after the media cannot be
read from a pipe, and the one error line says so and what to do; the remux it suggests does read."""

from __future__ import annotations

import contextlib
import os

import av
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.source import VideoItem
from stylize_video.pipeline.live.inputs import parse_input
from stylize_video.pipeline.live.source import LiveSource
from stylize_video.pipeline.synth import make_test_clip


@contextlib.contextmanager
def _stdin_from(path):
    """fd 0 reads ``path`` (FFmpeg's ``pipe:0`` never seeks, as on a real pipe)."""
    saved = os.dup(0)
    try:
        with open(path, "rb") as fh:
            os.dup2(fh.fileno(), 0)
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_an_mp4_with_its_index_at_the_end_on_stdin_is_one_line_with_the_way_out(tmp_path):
    # PyAV writes the moov last, as ffmpeg does; 0.5 MB: more than the demuxer's read buffer (a small file is read
    # whole into it, and then the index is found)
    clip = make_test_clip(tmp_path / "in.mp4", width=320, height=240, frames=20, pattern="noise", audio=False)
    with _stdin_from(clip), pytest.raises(StylizeError) as exc:
        LiveSource(parse_input("-"))
    assert str(exc.value) == (
        "reading stdin failed: Invalid data found when processing input; an MP4/MOV whose index (moov) comes after "
        "the media cannot be read from a pipe: give the file itself, or remux it (ffmpeg -i IN -c copy -movflags "
        "faststart OUT.mp4, or to .mkv/.ts)")
    fast = tmp_path / "fast.mp4"  # the remux the message suggests
    with av.open(str(clip)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(video=0):
            if p.dts is not None:
                p.stream = out
                o.mux(p)
    with _stdin_from(fast):
        source = LiveSource(parse_input("-"))
        try:
            assert sum(isinstance(item, VideoItem) for item in source) == 20
        finally:
            source.close()
