"""stylize_video.pipeline.synth: the generated clips really have the properties the other tests rely on."""

from __future__ import annotations

import itertools

import av
import pytest
from stylize_video.pipeline.synth import corrupt_clip, make_test_clip


def test_default_clip(tmp_path, vid):
    path = make_test_clip(tmp_path / "a.mp4")
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (64, 48)
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.name == "aac"
    frames = vid.frames(path)
    assert len(frames) == 12
    assert (int(frames[0].colorspace), int(frames[0].color_range)) == (1, 1)  # bt709, tv
    assert len(vid.audio(path)) > 10


def test_vfr_has_irregular_steps(tmp_path, vid):
    pts = vid.pts(make_test_clip(tmp_path / "v.mkv", vfr=True, audio=False))
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert len(pts) == 12 and len(steps) >= 3


def test_rotation_written_as_display_matrix(tmp_path, vid):
    frames = vid.frames(make_test_clip(tmp_path / "r.mp4", rotation=90, audio=False))
    assert frames[0].rotation == 90


@pytest.mark.parametrize(("space", "rng", "pix_fmt", "tags"), [
    ("bt601", "pc", "yuv420p", (6, 2)), ("bt2020", "tv", "yuv420p10le", (9, 1)),
])
def test_colour_tags_and_depth(tmp_path, vid, space, rng, pix_fmt, tags):
    f = vid.frames(make_test_clip(tmp_path / "c.mkv", colorspace=space, color_range=rng, pix_fmt=pix_fmt,
                                  audio=False, frames=2))[0]
    assert (int(f.colorspace), int(f.color_range)) == tags
    assert f.format.components[0].bits == (10 if "10" in pix_fmt else 8)


def test_interlaced_and_odd_size(tmp_path, vid):
    assert vid.frames(make_test_clip(tmp_path / "i.mkv", interlaced=True, audio=False, frames=2))[0].interlaced_frame
    f = vid.frames(make_test_clip(tmp_path / "o.mkv", width=63, height=47, pix_fmt="yuv444p", audio=False, frames=2))[0]
    assert (f.width, f.height) == (63, 47)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="colorspace"):
        make_test_clip(tmp_path / "x.mp4", colorspace="srgb")
    with pytest.raises(ValueError, match="pattern"):
        make_test_clip(tmp_path / "x.mp4", pattern="plaid")


def test_corrupt_clip_damages_packets(tmp_path):
    src = make_test_clip(tmp_path / "n.mp4", pattern="noise", width=128, height=96, frames=20, audio=False)
    bad = corrupt_clip(src, tmp_path / "bad.mp4", length=2000)
    assert bad.stat().st_size == src.stat().st_size and bad.read_bytes() != src.read_bytes()
