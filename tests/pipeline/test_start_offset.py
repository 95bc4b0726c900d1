"""``--start T``: the output starts at 0, as ``ffmpeg -ss T -i IN -t D OUT`` gives; every stream moves by the
same T, so A/V sync and VFR frame spacing are kept. Without ``--start`` the input timestamps are kept (other
tests; ``stylize-batch`` segments rely on them). The right values are the input's own timestamps minus T."""

from __future__ import annotations

import json
import struct
from fractions import Fraction

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_test_clip


def _run(capsys, src, out, model, *extra) -> dict:
    stats = out.with_name(out.name + ".json")
    rc = main([str(src), str(out), "--onnx", str(model), "--preset", "ultrafast", "--json", str(stats), *extra])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err, err
    return json.loads(stats.read_text())


def _times(path, kind: str) -> list[Fraction]:
    """Presentation times (s): decoded video frames or audio packets, as FFmpeg's default decode / demux gives."""
    with av.open(str(path)) as c:
        if kind == "video":
            return [f.pts * f.time_base for f in c.decode(video=0)]
        return [p.pts * p.time_base for p in c.demux(audio=0) if p.size]


def _edits(path) -> list[list[tuple[int, int]]]:
    """Every MP4 edit list (``elst`` box, ISO/IEC 14496-12 8.6.6) as (segment_duration, media_time) pairs;
    media_time -1 is an empty edit (the player shows nothing for segment_duration)."""
    data, found, at = path.read_bytes(), [], 0
    while (at := data.find(b"elst", at)) >= 0:
        version, count = data[at + 4], struct.unpack(">I", data[at + 8:at + 12])[0]
        fmt, size = (">QqI", 20) if version == 1 else (">IiI", 12)
        body = at + 12
        found.append([struct.unpack(fmt, data[body + i * size:body + (i + 1) * size])[:2] for i in range(count)])
        at += 4
    return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s at 25 fps, H.264 with B-frames and a keyframe each second, AAC 48 kHz: the README's example shape."""
    return make_test_clip(tmp_path_factory.mktemp("start") / "in.mp4", frames=100, fps=25, gop=25, bframes=2)


def test_start_and_duration_into_mp4_start_at_zero(tmp_path, capsys, negate_onnx, clip):
    out = tmp_path / "out.mp4"
    stats = _run(capsys, clip, out, negate_onnx, "--start", "2", "--duration", "0.12")
    assert stats["frames"] == 3
    assert _times(out, "video") == [Fraction(0), Fraction(1, 25), Fraction(2, 25)]
    # audio: the packets that start inside [2, 2.12), moved by the same 2 s (to the millisecond: MP4 places a
    # track's start with an edit list in the movie time scale, 1/1000 s in FFmpeg's muxer)
    want = [t - 2 for t in _times(clip, "audio") if 2 <= t < Fraction(212, 100)]
    got = _times(out, "audio")
    assert want and len(got) == len(want) and all(abs(a - b) <= Fraction(1, 1000) for a, b in zip(got, want)), got
    with av.open(str(out)) as c:
        assert c.start_time == 0 and c.duration / 1e6 == pytest.approx(0.12, abs=0.015)
        assert c.streams.video[0].start_time == 0
    # No empty edit on the video track (before: 2000 ms of nothing); the audio's is its distance from the video
    # (its first packet starts 5.3 ms after 2 s), under one AAC packet (1024 samples, 21 ms).
    video, audio = _edits(out)
    assert all(media_time != -1 for _, media_time in video), video
    assert sum(duration for duration, media_time in audio if media_time == -1) < 21, audio

def test_a_start_between_frames_keeps_the_first_frame_offset(tmp_path, capsys, negate_onnx, clip):
    out = tmp_path / "out.mkv"
    _run(capsys, clip, out, negate_onnx, "--start", "0.21", "--max-frames", "2", "--no-audio")
    assert _times(out, "video") == [Fraction(3, 100), Fraction(7, 100)]  # frames at 0.24 and 0.28, minus 0.21


def test_vfr_spacing_and_webm_start_at_zero(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "vfr.mkv", frames=30, fps=25, vfr=True)
    out = tmp_path / "out.webm"
    _run(capsys, src, out, negate_onnx, "--start", "0.38")
    start = Fraction(38, 100)
    kept = [t for t in _times(src, "video") if t >= start]
    assert kept[0] == start  # (the clip has a frame at 0.38 s, then 0.407, 0.487, 0.52: irregular steps)
    assert _times(out, "video") == [t - start for t in kept]  # the same spacing, from 0


def test_start_through_input_format_is_a_time_in_the_input(tmp_path, capsys, negate_onnx, clip):
    # --input-format opens the file as a LiveSource: --start was counted from the first packet after the seek
    # (2 s more), so `--start 2` found no frame before the end; now it means what it means for a plain file.
    out = tmp_path / "out.mkv"
    _run(capsys, clip, out, negate_onnx, "--input-format", "mov", "--start", "2", "--duration", "0.12", "--no-audio")
    assert _times(out, "video") == [Fraction(0), Fraction(1, 25), Fraction(2, 25)]
