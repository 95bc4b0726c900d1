"""ONNX I/O conventions: a 0..1 NHWC BGR model runs right with the flags, the convention used is printed, our
metadata is read first, and wrong or impossible guesses are one-line errors before any frame."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.conventions import Convention, ConventionFlags, prepare_onnx, resolve
from stylize_video.pipeline.backends import load_backend
from stylize_video.pipeline.stylizer import Stylizer


class Foreign(torch.nn.Module):
    """Wraps a 0..255 NCHW RGB network as an NHWC, BGR, 0..1 one (how OpenCV-minded exports look)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x.permute(0, 3, 1, 2).flip(1) * 255.0) / 255.0
        return y.flip(1).permute(0, 2, 3, 1)


@pytest.fixture(scope="module")
def foreign(spandrel_files, tmp_path_factory):
    from stylize_video.train.checkpoint import load_model

    net, _ = load_model(spandrel_files["compact"])
    path = tmp_path_factory.mktemp("conv") / "nhwc_bgr_unit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Foreign(net).eval(), (torch.rand(1, 20, 30, 3),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["upscaled"],
                          dynamic_axes={"image": {0: "n", 1: "h", 2: "w"}, "upscaled": {0: "n", 1: "h", 2: "w"}})
    return path, net


FLAGS = {"value_range": "0-1", "layout": "nhwc", "channel_order": "bgr"}


def test_unit_nhwc_bgr_runs_right_with_flags(foreign):
    path, net = foreign
    frame = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    with torch.no_grad():
        want = net(torch.from_numpy(frame).permute(2, 0, 1)[None].float()).clamp(0, 255).round()[0].permute(1, 2, 0)
    with Stylizer.load(path, device="cpu", **FLAGS) as s:
        out = s(frame)
        assert s.backend.convention == Convention("0-1", "nhwc", "bgr", s.backend.convention.source)
    assert out.shape == (74, 106, 3) and np.abs(out.astype(int) - want.numpy().astype(int)).max() <= 1


def test_cli_prints_the_convention(foreign, tmp_path, capsys):
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    src = make_test_clip(tmp_path / "in.mp4", width=32, height=24, frames=2, audio=False)
    stats = tmp_path / "stats.json"
    assert main([str(src), str(tmp_path / "out.mp4"), "--onnx", str(foreign[0]), "--value-range", "0-1",
                 "--layout", "nhwc", "--channel-order", "bgr", "--device", "cpu", "--json", str(stats)]) == 0
    err = capsys.readouterr().err
    assert "I/O NHWC BGR 0..1 (from --value-range/--layout/--channel-order)" in err
    assert json.loads(stats.read_text())["model"]["io"].startswith("NHWC BGR 0..1")


def test_wrong_layout_guess_is_caught(foreign):
    with pytest.raises(StylizeError, match=r"takes its 3 channels in dimension 3 \(NHWC\).*pass --layout nhwc"):
        load_backend(foreign[0], device="cpu")


def test_partial_flags_say_the_rest_is_assumed(foreign):
    with load_backend(foreign[0], device="cpu", convention=ConventionFlags(layout="nhwc")) as b:
        assert b.convention.describe() == "NHWC RGB 0..255 (from --layout, the rest assumed)"


def test_our_metadata_first(spandrel_files, tmp_path, capsys):
    from stylize_video.export.cli import main

    ours = tmp_path / "compact.onnx"
    assert main(["onnx", str(spandrel_files["compact"]), str(ours)]) == 0
    graph, conv, _props = prepare_onnx(ours, ConventionFlags(layout="nchw"))  # agreeing flag: fine
    assert graph is None and conv.native and conv.source == "stylize.* metadata"
    with pytest.raises(StylizeError, match=r"records its I/O convention in its stylize\.\* metadata .*--value-range "
                                           r"0-1 contradicts it"):
        load_backend(ours, device="cpu", convention=ConventionFlags(value_range="0-1"))


def test_flags_for_other_model_kinds_refused(spandrel_files):
    with pytest.raises(StylizeError, match=r"--value-range: for --onnx models only"):
        load_backend(spandrel_files["compact"], device="cpu", convention=ConventionFlags(value_range="0-1"))


def test_grey_onnx_refused(tmp_path):
    path = tmp_path / "grey.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(1, 1, 3, padding=1), (torch.rand(1, 1, 8, 8),), str(path), dynamo=False,
                          opset_version=17, dynamic_axes={"input.1": {2: "h", 3: "w"}})
    with pytest.raises(StylizeError, match=r"takes grey \(1-channel\) images; video frames are RGB"):
        load_backend(path, device="cpu")


def test_resolve_rules():
    assert resolve({}, None).source.startswith("assumed")
    assert resolve({"stylize.value_range": "0-255", "stylize.layout": "NCHW", "stylize.channel_order": "RGB"},
                   None).native
    with pytest.raises(StylizeError, match="--layout must be one of nchw, nhwc"):
        Convention(layout="chw")
