"""Which video stream is processed: FFmpeg's av_find_best_stream choice, never an attached picture, --video-stream."""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import PATTERNS


def _frame(pattern: str, i: int, w: int, h: int) -> av.VideoFrame:
    rgb = np.clip(PATTERNS[pattern](i, h, w, np.random.default_rng(i)), 0, 255).astype(np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def _write(path, tracks, cover: bool = False, frames: int = 6) -> None:
    """Video tracks ``[(pattern, w, h, default)]`` (+ a PNG cover) written together with PyAV."""
    with av.open(str(path), "w") as o:
        streams = []
        for pattern, w, h, default in tracks:
            s = o.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
            streams.append((s, pattern))
        if cover:
            c = o.add_stream("png")
            c.width, c.height, c.pix_fmt = 32, 32, "rgb24"
            c.disposition = av.stream.Disposition.attached_pic
            img = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
            for p in c.encode(img) + c.encode(None):
                o.mux(p)
        for i in range(frames):
            for s, pattern in streams:
                f = _frame(pattern, i, s.width, s.height)
                f.pts, f.time_base = i, Fraction(1, 25)
                o.mux(s.encode(f))
        for s, _ in streams:
            o.mux(s.encode(None))


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the ISO-BMFF boxes in ``data[start:end]`` (32-bit sizes)."""
    out, at, end = [], start, len(data) if end is None else end
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        out.append((kind, at, size))
        at += size
    return out


def _cover_listed_first(src, dst) -> None:
    """``src`` (MP4 with a cover) with moov's ``udta`` (which holds the cover) moved before the tracks, as some
    taggers write it: the demuxer then lists the cover as stream #0. Chunk offsets point into ``mdat``, which
    stays where it is (moov comes after it)."""
    data = src.read_bytes()
    kinds = {k: (at, size) for k, at, size in _boxes(data)}
    moov_at, moov_size = kinds[b"moov"]
    assert kinds[b"mdat"][0] < moov_at
    children = _boxes(data, moov_at + 8, moov_at + moov_size)
    udta = [c for c in children if c[0] == b"udta"]
    rest = [c for c in children if c[0] != b"udta"]
    first_trak = next(i for i, c in enumerate(rest) if c[0] == b"trak")
    order = rest[:first_trak] + udta + rest[first_trak:]
    body = b"".join(data[at:at + size] for _, at, size in order)
    dst.write_bytes(data[:moov_at + 8] + body + data[moov_at + moov_size:])


def _run(capsys, *args) -> tuple[int, str]:
    rc = main([*map(str, args), "--preset", "ultrafast"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _sizes(path) -> list[tuple[str, int, int]]:
    with av.open(str(path)) as c:
        return [(s.codec_context.name, s.codec_context.width, s.codec_context.height) for s in c.streams.video]


def test_cover_art_listed_first_is_not_the_video_and_is_copied(tmp_path, capsys, negate_onnx):
    plain = tmp_path / "plain.mp4"
    _write(plain, [("gradient", 64, 48, True)], cover=True)
    src = tmp_path / "cover_first.mp4"
    _cover_listed_first(plain, src)
    with av.open(str(src)) as c:
        assert [(s.index, s.codec_context.name) for s in c.streams] == [(0, "png"), (1, "h264")]
    rc, err = _run(capsys, src, tmp_path / "out.mp4", "--onnx", negate_onnx)
    assert rc == 0, err
    assert "video stream #1 (h264 64x48, default)" in err  # said in the summary
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(list(c.decode(video=0))) == 6
        covers = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        assert [s.codec_context.name for s in covers] == ["png"]  # MP4 keeps the cover
    rc, err = _run(capsys, src, tmp_path / "out.mkv", "--onnx", negate_onnx)
    assert rc == 0 and "video stream #0 (png) cannot go into" in err and "dropped" in err  # Matroska: a note
    assert _sizes(tmp_path / "out.mkv") == [("h264", 64, 48)]


def test_only_cover_art_is_an_error(tmp_path, capsys, negate_onnx):
    src = tmp_path / "song.mp4"
    with av.open(str(src), "w") as o:  # a cover and a short AAC track, as music files have
        c = o.add_stream("png")
        c.width, c.height, c.pix_fmt = 32, 32, "rgb24"
        c.disposition = av.stream.Disposition.attached_pic
        a = o.add_stream("aac", rate=48000, layout="mono")
        for p in c.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
            o.mux(p)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        o.mux(a.encode(f) + a.encode(None))
    rc, err = _run(capsys, src, tmp_path / "out.mp4", "--onnx", negate_onnx)
    assert rc == 1 and err.splitlines() == [(f"stylize-video: error: {src} has no video stream, only an attached "
                                            "picture (cover art)")]
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(("tracks", "why"), [
    ([("gradient", 64, 48, False), ("bars", 96, 64, True)], "only the second is flagged default"),
    ([("gradient", 64, 48, True), ("noise", 96, 64, True)], "both default: the higher bit rate"),
])
def test_two_video_tracks_take_ffmpegs_choice(tmp_path, capsys, negate_onnx, tracks, why):
    src = tmp_path / ("two.mkv" if "only" in why else "two.mp4")  # Matroska stores no bit rate, MP4 does
    _write(src, tracks)
    with av.open(str(src)) as c:
        assert [bool(s.disposition & av.stream.Disposition.default) for s in c.streams] == [t[3] for t in tracks]
        assert c.streams.best("video").index == 1, why  # FFmpeg's own av_find_best_stream agrees
    rc, err = _run(capsys, src, tmp_path / "out.mkv", "--onnx", negate_onnx)
    assert rc == 0, err
    assert _sizes(tmp_path / "out.mkv") == [("h264", 96, 64)] and "video stream #1 (h264 96x64" in err
    rc, err = _run(capsys, src, tmp_path / "first.mkv", "--onnx", negate_onnx, "--video-stream", "0")
    assert rc == 0 and _sizes(tmp_path / "first.mkv") == [("h264", 64, 48)] and "video stream #0 (h264 64x48" in err


def test_video_stream_option_refuses_what_is_not_video(tmp_path, capsys, negate_onnx):
    src = tmp_path / "cover.mp4"
    _write(src, [("gradient", 64, 48, True)], cover=True)
    with av.open(str(src)) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264", "png"]
    audio = tmp_path / "with_audio.mkv"
    from stylize_video.pipeline.synth import make_test_clip

    make_test_clip(audio, frames=3)
    cases = [
        (src, "1", ("--video-stream 1: stream #1 of {src} is an attached picture (cover art), not video; "
                   "video streams: #0 (h264 64x48, default), #1 (png 32x32, attached picture)")),
        (src, "7", ("--video-stream 7: {src} has streams 0 to 1; video streams: #0 (h264 64x48, default), "
                   "#1 (png 32x32, attached picture)")),
        (audio, "1", "--video-stream 1: stream #1 of {src} is audio, not video; video streams: #0 (h264 64x48)"),
    ]
    for n, (path, index, message) in enumerate(cases):
        out = tmp_path / f"o{n}.mp4"
        rc, err = _run(capsys, path, out, "--onnx", negate_onnx, "--video-stream", index)
        assert rc == 1 and err.splitlines() == ["stylize-video: error: " + message.format(src=path)]
        assert not out.exists()
