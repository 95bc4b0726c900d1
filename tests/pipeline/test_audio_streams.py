"""Audio streams carried into another container: PCM whose channel layout is unnamed (Matroska stores a channel
count only) into MP4, which refuses such a layout at the trailer (FFmpeg's default layout up to 8 channels; 12
channels, which no layout names: dropped with a warning before any work); and the trailer's errors as one line."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_test_clip


def _pcm_mkv(folder, channels: int, layout: str):
    """H.264 + 1 s of 16-bit PCM in Matroska (read back, its layout is "N channels", no names)."""
    video = make_test_clip(folder / "v.mkv", frames=12, audio=False)
    path = folder / "pcm.mkv"
    with av.open(str(video)) as i, av.open(str(path), "w") as o:
        vs = o.add_stream_from_template(i.streams.video[0])
        a = o.add_stream("pcm_s16le", rate=48000, layout=layout)
        for p in i.demux(video=0):
            if p.size:
                p.stream = vs
                o.mux(p)
        for k in range(24):  # 24 x 2000 samples
            t = np.arange(k * 2000, (k + 1) * 2000) / 48000
            tone = (0.2 * np.sin(2 * math.pi * 440 * t) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.repeat(tone, channels)[None], format="s16", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = 48000, k * 2000, Fraction(1, 48000)
            o.mux(a.encode(frame))
        o.mux(a.encode(None))
    with av.open(str(path)) as c:
        assert c.streams.audio[0].codec_context.layout.name == f"{channels} channels"  # what the bug needs
    return path


@pytest.fixture
def pcm_mkv(tmp_path):
    return _pcm_mkv(tmp_path, 2, "stereo")


def _audio(path) -> tuple[str, str, list[bytes]]:
    with av.open(str(path)) as c:
        cc = c.streams.audio[0].codec_context
        return cc.name, cc.layout.name, [bytes(p) for p in c.demux(audio=0) if p.size]


def test_pcm_without_a_channel_layout_goes_into_mp4(tmp_path, capsys, negate_onnx, pcm_mkv):
    out = tmp_path / "out.mp4"
    rc = main([str(pcm_mkv), str(out), "--onnx", str(negate_onnx), "--preset", "ultrafast"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and "warning" not in err, err
    codec, layout, packets = _audio(out)
    # copied sample for sample, with FFmpeg's default layout for 2 channels (as ffmpeg assumes when it decodes)
    assert (codec, layout) == ("pcm_s16le", "stereo")
    assert b"".join(packets) == b"".join(_audio(pcm_mkv)[2])


def test_a_trailer_the_muxer_refuses_is_one_line_and_leaves_nothing(tmp_path, capsys, negate_onnx, pcm_mkv,
                                                                   monkeypatch):
    # Without the default layout the MP4 muxer refuses the stream only at the trailer, after all the work (past
    # the early check, skipped here): one error line with FFmpeg's reason, and nothing under the output's name
    # (nor a temporary file).
    from stylize_video.pipeline.io import passthrough

    monkeypatch.setattr(passthrough, "named_layout", lambda layout, channels: layout)
    monkeypatch.setattr(passthrough, "_check_header", lambda container, template: None)
    out = tmp_path / "out.mp4"
    rc = main([str(pcm_mkv), str(out), "--onnx", str(negate_onnx), "--preset", "ultrafast"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1 and err == [(f"stylize-video: error: finishing {out} failed: [mp4] unsupported channel layout "
                               "2 channels")], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pcm.mkv", "v.mkv"]


def test_pcm_in_more_channels_than_mp4_can_name_is_dropped_with_a_warning(tmp_path, capsys, negate_onnx):
    # 12 channels: no FFmpeg layout names them, the MP4 muxer refuses the stream at its trailer (after all the work)
    # and AAC takes at most 8 channels. Decided before the header: dropped with one warning; .mov keeps it.
    pcm = _pcm_mkv(tmp_path, 12, "12c")
    out = tmp_path / "out.mp4"
    rc = main([str(pcm), str(out), "--onnx", str(negate_onnx), "--preset", "ultrafast"])
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "warning:" in line]
    assert rc == 0 and "Traceback" not in err and len(warned) == 1, err
    assert warned[0].startswith(f"stylize-video: warning: audio stream #1 (pcm_s16le) cannot go into {out}: dropped "
                                "(mp4 cannot hold pcm_s16le in 12 channels (FFmpeg: [mp4] unsupported channel layout "
                                "12 channels), and aac cannot encode it); write .mkv to keep it"), warned
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"] and len(list(c.decode(video=0))) == 12
    rc = main([str(pcm), str(tmp_path / "out.mov"), "--onnx", str(negate_onnx), "--preset", "ultrafast"])
    assert rc == 0 and "warning" not in capsys.readouterr().err
    codec, layout, packets = _audio(tmp_path / "out.mov")
    assert (codec, layout) == ("pcm_s16le", "12 channels") and b"".join(packets) == b"".join(_audio(pcm)[2])
