"""Interlaced input: bwdif/yadif through a PyAV filter graph before the model; combing measured, frame count,
timestamps and the progressive flag checked (--deinterlace, --deinterlace-rate)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_interlaced_clip, make_test_clip

FPS = 25


def combing(path) -> float:
    """Median over frames of mean |row y - row y+1| / mean |row y - row y+2| on luma.

    Adjacent rows belong to different fields, rows two apart to the same field: on progressive pictures the
    ratio is about 0.5 (a smooth picture changes half as much over one line as over two); where fields were
    captured at different times and something moves, adjacent rows disagree and the ratio passes 1.
    """
    ratios = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            y = f.to_ndarray(format="gray").astype(np.float64)
            ratios.append(np.abs(y[:-1] - y[1:]).mean() / np.abs(y[:-2] - y[2:]).mean())
    return float(np.median(ratios))


def _frames(path) -> tuple[list[Fraction], list[bool], int]:
    with av.open(str(path)) as c:
        field_order = c.streams.video[0].codec_context.field_order
        frames = list(c.decode(video=0))
    return [f.pts * f.time_base for f in frames], [f.interlaced_frame for f in frames], field_order


@pytest.fixture(scope="module")
def woven(tmp_path_factory):
    return make_interlaced_clip(tmp_path_factory.mktemp("il") / "woven.mkv", frames=12, fps=FPS)


def _run(capsys, src, out, model, *extra) -> str:
    rc = main([str(src), str(out), "--onnx", str(model), "--preset", "ultrafast", "--crf", "8", *extra])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err, err
    return err


def test_interlaced_frames_are_deinterlaced_by_default(tmp_path, capsys, woven, negate_onnx):
    times_in, flagged, order_in = _frames(woven)
    assert all(flagged) and order_in not in (0, 1) and combing(woven) > 1.5  # combed, and flagged so
    out = tmp_path / "out.mkv"
    err = _run(capsys, woven, out, negate_onnx)
    assert "deinterlaced with bwdif (frame rate)" in err
    times, flagged, order = _frames(out)
    assert times == times_in and not any(flagged) and order == 1  # one frame per frame; progressive
    assert combing(out) < 0.65  # 2.2 -> 0.53 measured; progressive pictures measure about 0.5


def test_field_rate_doubles_frames_with_timestamps_between(tmp_path, capsys, woven, negate_onnx):
    times_in = _frames(woven)[0]
    out = tmp_path / "out.mp4"
    err = _run(capsys, woven, out, negate_onnx, "--deinterlace-rate", "field", "--deinterlace", "yadif")
    assert "deinterlaced with yadif (field rate)" in err
    times, flagged, order = _frames(out)
    half = Fraction(1, 2 * FPS)
    assert times == [t + k * half for t in times_in for k in (0, 1)] and not any(flagged) and order == 1
    assert combing(out) < 0.65


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_deinterlace_off_keeps_the_combing_the_field_order_and_says_so(tmp_path, capsys, woven, negate_onnx, ext):
    out = tmp_path / f"off.{ext}"
    err = _run(capsys, woven, out, negate_onnx, "--deinterlace", "off")
    assert "warning: interlaced input: frames are processed as decoded, combing included" in err
    assert _frames(out)[0] == _frames(woven)[0] and combing(out) > 1.5
    # woven fields stay flagged as such, in the input's field order (TT), frame by frame and on the stream
    _, flagged, order = _frames(out)
    assert all(flagged) and order == _frames(woven)[2] == 2


def test_progressive_input_is_untouched(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "p.mp4", frames=6, audio=False)
    out = tmp_path / "p_out.mp4"
    err = _run(capsys, src, out, negate_onnx)
    assert "deinterlaced" not in err and "interlaced" not in err
    assert _frames(out)[0] == _frames(src)[0]


def test_nvdec_interlaced_input_is_decoded_on_the_cpu(tmp_path, woven, monkeypatch):
    """--hwdec on interlaced input: the filters take CPU frames, so the file is reopened for CPU decoding (said
    once). NVDEC itself is faked (no GPU here): the hwaccel opens as plain CPU decoding."""
    from stylize_video.pipeline.io import source as src_module
    from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions

    monkeypatch.setattr(src_module, "nvdec_available", lambda: True)
    monkeypatch.setattr(src_module, "make_hwaccel", lambda *a, **k: None)
    monkeypatch.setattr(src_module, "use_torch_context", lambda index: None)  # no CUDA context to make current
    with pytest.warns(UserWarning, match="interlaced input is decoded on the CPU so that it can be deinterlaced"):
        s = src_module.FileSource(woven, src_module.FileSourceOptions(hwdec=True))
    try:
        assert s.info.decode_path == "cpu (interlaced input)" and s.info.deinterlace == "bwdif (frame rate)"
        assert sum(isinstance(i, src_module.VideoItem) for i in s) == 12
    finally:
        s.close()
    off = src_module.FileSourceOptions(hwdec=True, deinterlace=DeinterlaceOptions("off"))
    s = src_module.FileSource(woven, off)  # deinterlacing off: NVDEC is kept
    s.close()
    assert s.info.decode_path != "cpu (interlaced input)"
