"""Encoder settings: impossible ones refused before any work with one line; odd sizes padded to even 4:2:0 by
default (4:4:4 on request); each container's default codec."""

from __future__ import annotations

import av
import numpy as np
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.oddsize import pad_frame, padded_size
from stylize_video.pipeline.io.planes import PlaneLayout
from stylize_video.pipeline.synth import make_test_clip


@pytest.fixture
def odd(tmp_path):
    return make_test_clip(tmp_path / "odd.mkv", width=63, height=47, pix_fmt="yuv444p", frames=3, audio=False)


def _run(capsys, *args) -> tuple[int, list[str]]:
    fast = [] if "--codec" in args else ["--preset", "ultrafast"]  # (an x264 preset: other encoders warn)
    rc = main([*map(str, args), *fast])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.splitlines()


@pytest.mark.parametrize(("extra", "message"), [
    (["--pix-fmt", "yuv420p"], ("--pix-fmt yuv420p (4:2:0) needs the width a multiple of 2 and height a multiple of "
                               "2; the output is 63x47: leave --pix-fmt out to pad it to 64x48, or use --pix-fmt "
                               "yuv444p to keep 63x47")),
    (["--pix-fmt", "yuv422p"], ("--pix-fmt yuv422p (4:2:2) needs the width a multiple of 2; the output is 63x47: leave "
                               "--pix-fmt out to pad it to 64x47, or use --pix-fmt yuv444p to keep 63x47")),
    (["--pix-fmt", "yuv999p"], ("--pix-fmt 'yuv999p' is not a pixel format this FFmpeg knows (e.g. yuv420p, yuv444p, "
                               "yuv420p10le)")),
    (["--pix-fmt", "rgb48le"], "encoder libx264 does not take --pix-fmt rgb48le; it takes"),
    (["--codec", "libx264"], "{out}: webm cannot hold h264 (from --codec libx264); use --codec libvpx-vp9 or libsvtav1"),
])
def test_impossible_settings_fail_before_work_with_one_line(tmp_path, capsys, odd, negate_onnx, extra, message):
    out = tmp_path / ("out.webm" if "--codec" in extra else "out.mp4")
    rc, err = _run(capsys, odd, out, "--onnx", negate_onnx, *extra)
    assert rc == 1 and len(err) == 1 and err[0].startswith("stylize-video: error: " + message.format(out=out)), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mkv"]  # nothing written, no temporary file


def test_odd_size_is_padded_to_even_yuv420p_and_444_keeps_it(tmp_path, capsys, negate_onnx):
    # 4:2:0 at 63x47 (FFV1 stores it; H.264 cannot)
    src = make_test_clip(tmp_path / "odd.mkv", width=63, height=47, frames=3, audio=False, codec="ffv1")
    out = tmp_path / "padded.mkv"
    rc, err = _run(capsys, src, out, "--onnx", negate_onnx, "--crf", "0")
    assert rc == 0 and any("odd frame size 63x47" in line and "the output is 64x48" in line for line in err), err
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert [(f.width, f.height, f.format.name) for f in frames] == [(64, 48, "yuv420p")] * 3
    y = frames[0].to_ndarray(format="gray")
    assert (y[:, 63] == y[:, 62]).all() and (y[47] == y[46]).all()  # the edge repeated (lossless: exact)
    out444 = tmp_path / "exact.mkv"
    rc, err = _run(capsys, src, out444, "--onnx", negate_onnx, "--pix-fmt", "yuv444p")
    assert rc == 0, err
    with av.open(str(out444)) as c:
        assert {(f.width, f.height, f.format.name) for f in c.decode(video=0)} == {(63, 47, "yuv444p")}


@pytest.mark.parametrize(("fmt", "w", "h", "target"), [
    ("yuv420p", 63, 47, (64, 48)), ("yuv420p10le", 63, 47, (64, 48)), ("yuv422p", 63, 47, (64, 47)),
    ("nv12", 62, 46, (64, 48)),  # FFmpeg has no odd-sized NV12: padded by a CbCr pair here
])
def test_pad_frame_repeats_the_edge_in_every_plane(fmt, w, h, target):
    if fmt != "nv12":
        assert padded_size(fmt, w, h) == target
    rng = np.random.default_rng(0)
    frame = av.VideoFrame(w, h, fmt)
    for plane in frame.planes:
        np.frombuffer(plane, np.uint8)[:] = rng.integers(0, 256, plane.buffer_size, np.uint8)
    frame.pts = 7
    out = pad_frame(frame, *target)
    assert (out.width, out.height, out.format.name, out.pts) == (*target, fmt, 7)
    src, dst = PlaneLayout(fmt, w, h), PlaneLayout(fmt, *target)
    dtype = np.uint16 if src.bytes_per_sample == 2 else np.uint8
    for i, (a, b, (ra, ca), (rb, cb)) in enumerate(zip(frame.planes, out.planes, src.plane_shapes, dst.plane_shapes)):
        A = np.frombuffer(a, np.uint8).reshape(-1, a.line_size)[:ra].view(dtype)[:, :ca]
        B = np.frombuffer(b, np.uint8).reshape(-1, b.line_size)[:rb].view(dtype)[:, :cb]
        unit = 2 if fmt == "nv12" and i else 1
        assert (B[:ra, :ca] == A).all()
        assert (B[:ra, ca:] == np.tile(A[:, -unit:], (1, (cb - ca) // unit))).all()
        assert (B[ra:] == B[ra - 1]).all()


def test_webm_defaults_to_vp9_and_opus(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "in.mp4", frames=4)  # H.264 + AAC
    out = tmp_path / "out.webm"
    rc, err = _run(capsys, src, out, "--onnx", negate_onnx)
    assert rc == 0 and any("webm cannot hold aac" in line and "re-encoded to opus" in line for line in err), err
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams] == ["vp9", "opus"] and len(list(c.decode(video=0))) == 4


@pytest.mark.parametrize(("out", "extra", "message"), [
    ("out.mkv", ["--codec", "aac"], "--codec aac: aac is not a video encoder (it encodes audio)"),
    ("out.mkv", ["--codec", "subrip"], "--codec subrip: subrip is not a video encoder (it encodes subtitles)"),
    # listed by the MOV muxer, refused when it writes its header: FFmpeg's reason is in the line
    ("out.mov", ["--codec", "libvpx-vp9"], ("{out}: mov cannot hold vp9 (from --codec libvpx-vp9; FFmpeg: [mov] vp9 "
                                           "only supported in MP4.); use --codec libx264 or libx265")),
    ("out.mp4", ["--preset", "bogus"], "--preset 'bogus' is not a libx264 preset; use one of ultrafast, superfast,"),
    # x264 would clamp it to 51 in silence (FFmpeg's crf option takes any number); libvpx's range is 0-63
    ("out.mp4", ["--crf", "99"], "--crf 99 is out of range for libx264: 0 to 51 (lower is better quality)"),
    ("out.webm", ["--crf", "64"], "--crf 64 is out of range for libvpx-vp9: 0 to 63 (lower is better quality)"),
    ("out.mkv", ["--codec", "libx265", "--crf", "60"], "--crf 60 is out of range for libx265: 0 to 51 (lower is better quality)"),
])
def test_a_codec_or_preset_the_output_cannot_take_is_one_line_before_work(tmp_path, capsys, negate_onnx, out, extra,
                                                                         message):
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    out = tmp_path / out
    rc = main([str(src), str(out), "--onnx", str(negate_onnx), *extra])  # (no --preset of ours after theirs)
    err = capsys.readouterr().err.splitlines()
    # one line: no traceback, no x264 line of its own, the model never loaded
    assert rc == 1 and len(err) == 1 and err[0].startswith("stylize-video: error: " + message.format(out=out)), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_preset_or_crf_the_encoder_has_not_is_warned_about(tmp_path, capsys, negate_onnx):
    # FFV1 (lossless) has neither: both would be ignored in silence.
    src = make_test_clip(tmp_path / "in.mp4", frames=2, audio=False)
    rc = main([str(src), str(tmp_path / "out.mkv"), "--onnx", str(negate_onnx), "--codec", "ffv1", "--preset", "slow",
               "--crf", "10"])
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert rc == 0 and sorted(warned) == [
        ("stylize-video: warning: --crf 10: encoder ffv1 has no constant-quality (crf) setting; ignored (--bitrate "
         "sets its rate)"),
        "stylize-video: warning: --preset slow: encoder ffv1 has no presets; ignored"], warned


def test_a_header_the_muxer_refuses_fails_at_open_with_its_reason(tmp_path, capsys, negate_onnx, monkeypatch):
    # Past the early check (skipped here), the output's own header is written before the first frame: the line
    # gives FFmpeg's reason, and no clean audio packet is blamed for it.
    from stylize_video.pipeline.io import containers

    monkeypatch.setattr(containers, "_header_refuses", lambda codec, muxer: None)
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    rc, err = _run(capsys, src, tmp_path / "out.mov", "--onnx", negate_onnx, "--codec", "libvpx-vp9")
    assert rc == 1 and err == [(f"stylize-video: error: cannot write {tmp_path / 'out.mov'}: [mov] vp9 only supported "
                               "in MP4.")], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_an_encoder_that_will_not_open_names_the_size_format_and_reason(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "in.mp4", frames=2, audio=False)
    rc, err = _run(capsys, src, tmp_path / "out.mkv", "--onnx", negate_onnx, "--codec", "mjpeg")
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("stylize-video: error: cannot open encoder mjpeg for 64x48 yuv420p ([mjpeg] Non "
                             "full-range YUV is non-standard"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_odd_10_bit_input_is_padded_in_10_bit_and_the_hint_keeps_10_bit(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "odd10.mkv", width=63, height=47, frames=2, audio=False, codec="ffv1",
                         pix_fmt="yuv420p10le")
    rc, err = _run(capsys, src, tmp_path / "out.mkv", "--onnx", negate_onnx)
    warned = [line for line in err if "odd frame size 63x47" in line]
    assert rc == 0 and len(warned) == 1, err
    assert "yuv420p10le (4:2:0" in warned[0] and "--pix-fmt yuv444p10le keeps 63x47" in warned[0]
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
