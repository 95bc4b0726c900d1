"""A 0..1 ONNX model run without flags is caught at load: refused where its output range leaves no doubt, a warning
(that -q does not hide) where the output is only nearly black; flags and our metadata skip the check."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.conventions import ConventionFlags
from stylize_video.pipeline.backends import load_backend
from stylize_video.pipeline.stylizer import Stylizer
from stylize_video.pipeline.value_range_check import probe_frame


class UnitClamped(torch.nn.Module):
    """Real-ESRGAN-style I/O: RGB in 0..1, output clamped to 0..1 (here the identity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0.0, 1.0)


class Dim(torch.nn.Module):
    """Output = input / 64: not clamped, but fed 0..255 it peaks near 4 (a near-black video)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 64.0


def _export(net: torch.nn.Module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}})
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("range")
    return {"unit": _export(UnitClamped(), root / "unit01.onnx"), "dim": _export(Dim(), root / "dim.onnx")}


def test_probe_frame_spans_the_range():
    x = probe_frame(32, 32)
    assert x.shape == (1, 3, 32, 32)
    assert [(float(c.min()), float(c.max())) for c in x[0]] == [(0.0, 255.0), (0.0, 255.0), (0.0, 255.0)]
    assert float(x[0, :, 15:17, 15:17].mean()) == pytest.approx(127.5, abs=5)  # mid-grey at the centre


def test_a_unit_range_model_without_flags_is_refused(models):
    with pytest.raises(StylizeError) as exc:
        load_backend(models["unit"], device="cpu", precision="fp32")
    assert str(exc.value) == ("unit01.onnx: for a probe frame spanning 0..255 the model's output stays within [0, 1], "
                              "so it is not a 0..255 model (the assumed convention would write a black video): pass "
                              "--value-range 0-1 if it takes RGB in 0..1 (--value-range 0-255 runs it as it is)")


def test_the_flag_runs_it_right_and_an_explicit_0_255_runs_it_as_it_is(models):
    frame = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    with Stylizer.load(models["unit"], device="cpu", value_range="0-1") as s:
        assert np.array_equal(s(frame), frame)  # identity in 0..1: frames come back unchanged
    with Stylizer.load(models["unit"], device="cpu", value_range="0-255") as s:
        assert s(frame).max() <= 1  # what the user asked for: the model's own 0..1 output, stored as is


def test_a_nearly_black_output_is_a_warning_that_quiet_does_not_hide(models, tmp_path, capsys):
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    src = make_test_clip(tmp_path / "in.mp4", width=32, height=24, frames=2, audio=False)
    assert main([str(src), str(tmp_path / "out.mp4"), "--onnx", str(models["dim"]), "--device", "cpu", "-q"]) == 0
    assert capsys.readouterr().err == (
        "stylize-video: warning: dim.onnx: for a probe frame spanning 0..255 the model's output peaks at 3.98 (of "
        "255): the video will be nearly black; if the model takes RGB in 0..1, pass --value-range 0-1 "
        "(--value-range 0-255 silences this)\n")
    assert (tmp_path / "out.mp4").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit range: no probe, no warning
        load_backend(models["dim"], device="cpu", precision="fp32", convention=ConventionFlags("0-255")).close()


def test_stylize_batch_passes_the_convention_and_tiles_to_its_workers(models, tmp_path, monkeypatch):
    # stylize-batch shares stylize-video's model flags: without them reaching the workers, the refusal above
    # would name a flag that does nothing there.
    from stylize_video.pipeline.batch import driver
    from stylize_video.pipeline.batch.cli import main
    from stylize_video.pipeline.batch.worker import SegmentWorker
    from stylize_video.pipeline.synth import make_test_clip
    from stylize_video.pipeline.tiling import TileOptions

    seen = {}

    def capture(inputs, config, *args, **kwargs):
        seen["config"] = config
        raise KeyboardInterrupt  # stop before any worker starts

    monkeypatch.setattr(driver, "run_batch", capture)
    src = make_test_clip(tmp_path / "in.mp4", width=32, height=24, frames=2, audio=False)
    assert main([str(src), "--out-dir", str(tmp_path / "out"), "--onnx", str(models["unit"]), "--value-range", "0-1",
                 "--tile", "16", "--device", "cpu", "-q"]) == 130
    config = seen["config"]
    assert config.convention == ConventionFlags("0-1") and config.tile == TileOptions(16)
    worker = SegmentWorker(config, "cpu")
    backend = worker._load()
    try:
        assert backend.convention.value_range == "0-1" and backend.options.overlap == 4  # tiled, default overlap
    finally:
        backend.close()
