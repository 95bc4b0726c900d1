"""Size rules around every backend: tiny frames (1x1 .. 4x4, 4x64) on torch and ONNX, a hand-exported
pytorch/examples TransformerNet (multiple of 4, no internal padding) whose rules are found by probing, and the
one-line refusal of a model whose output is not a fixed multiple of its input."""

from __future__ import annotations

import warnings

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.export.conventions import ConventionFlags
from stylize_video.pipeline.backends import load_backend
from stylize_video.pipeline.sizing import pad_bottom_right
from stylize_video.pipeline.stylizer import Stylizer
from stylize_video.sizerules import SizeRules
from stylize_video.train.networks import TransformerNet
from stylize_video.train.networks.transformer_net import SIZE_MULTIPLE

TINY = [(1, 1), (2, 2), (3, 3), (4, 4), (4, 64)]


class ExamplesTransformerNet(TransformerNet):
    """pytorch/examples' forward: no padding, so sides must be multiples of 4 (and >= 8 for the 9x9 pads)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_unpadded(x)


def _export_by_hand(net: torch.nn.Module, path, sample=(1, 3, 64, 64)) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.rand(*sample) * 255,), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}})


@pytest.fixture(scope="module")
def tn_models(tmp_path_factory, checkpoints):
    """Our TransformerNet as a checkpoint and as our ONNX export (with its metadata); the same weights exported by
    hand. (The export CLI's own checks are tested in tests/export; here only the graph matters.)"""
    from stylize_video.export.metadata import metadata_for
    from stylize_video.export.onnx_export import export_model, save_atomic
    from stylize_video.train.checkpoint import load_model

    root = tmp_path_factory.mktemp("tiny")
    ours = root / "tn.onnx"
    tn, info = load_model(checkpoints["style"])
    save_atomic(export_model(tn, metadata_for(tn, info)), ours)
    net = ExamplesTransformerNet()
    net.load_state_dict(tn.state_dict())
    with torch.no_grad():  # outputs over ~0..255 like a trained net's (fresh weights give +-1: a 0..1-looking model)
        net.deconv3.conv2d.weight.mul_(60.0)
        net.deconv3.conv2d.bias.fill_(127.5)
    _export_by_hand(net, root / "by_hand.onnx")
    return {"ckpt": checkpoints["style"], "onnx": ours, "by_hand": root / "by_hand.onnx", "net": net.eval()}


def test_size_rules_arithmetic():
    r = SizeRules(minimum=5, multiple_of=4)
    assert r.minimum == 8 and r.padded(1, 1) == (8, 8) and r.padded(50, 66) == (52, 68) and r.accepts(52, 68)
    assert SizeRules(minimum=16, square=True).padded(20, 70) == (70, 70)
    assert SizeRules().none and SizeRules().padded(1, 3) == (1, 3)
    assert SizeRules.from_metadata(r.to_metadata()) == r and SizeRules.from_metadata({}) is None
    assert r.describe() == "sides >= 8, multiples of 4"
    with pytest.raises(StylizeError):
        SizeRules(multiple_of=0)
    fixed = SizeRules(fixed=(4, 6))  # a graph without dynamic axes: smaller frames padded to it
    assert fixed.padded(1, 1) == (4, 6) and fixed.accepts(4, 6) and not fixed.accepts(4, 4) and not fixed.none
    assert not fixed.fits(5, 6) and fixed.describe() == "fixed 6x4" and r.merged(fixed).fixed == (4, 6)
    with pytest.raises(StylizeError, match=r"^6x5 frames are larger than this model's fixed input size 6x4: "
                                           r"re-export it with dynamic height/width \(tiles are square"):
        fixed.padded(5, 6)


def test_pad_reflects_then_replicates():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)  # [[0 1 2] [3 4 5]]
    y = pad_bottom_right(x, 4, 5)
    # width 3 -> 5: reflect 2 columns (1 0 -> "1, 0"); height 2 -> 4: reflect 1 row, then replicate 1
    want = torch.tensor([[0, 1, 2, 1, 0], [3, 4, 5, 4, 3], [0, 1, 2, 1, 0], [0, 1, 2, 1, 0]], dtype=torch.float32)
    assert torch.equal(y[0, 0], want)
    assert torch.equal(pad_bottom_right(torch.full((1, 3, 1, 1), 7.0), 5, 5), torch.full((1, 3, 5, 5), 7.0))


@pytest.mark.parametrize("kind", ["ckpt", "onnx", "by_hand"])
def test_tiny_frames_every_backend(tn_models, kind):
    rng = np.random.default_rng(0)
    with Stylizer.load(tn_models[kind], device="cpu") as s, Stylizer.load(tn_models["ckpt"], device="cpu") as ref:
        for h, w in TINY:
            frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            out = s(frame)
            assert out.shape == (h, w, 3) and out.dtype == np.uint8
            if kind == "onnx":  # same padding, same network: same pixels as the torch backend
                assert np.abs(out.astype(int) - ref(frame).astype(int)).max() <= 1


def test_hand_exported_multiple_of_4_is_probed_padded_and_cropped(tn_models):
    with load_backend(tn_models["by_hand"], device="cpu", precision="fp32") as b:
        assert b.size_rules == SizeRules(minimum=8, multiple_of=SIZE_MULTIPLE) and b.scale == 1
        x = torch.rand(1, 3, 50, 66) * 255  # the size from the bug report: the graph alone gives 52x68
        y = b(x)
    with torch.no_grad():
        want = tn_models["net"](F.pad(x, (0, 2, 0, 2), mode="reflect"))[..., :50, :66]
    assert y.shape == (1, 3, 50, 66)
    assert float((y - want).abs().max()) < 0.05


def test_output_not_a_fixed_multiple_is_one_line(tmp_path):
    class OneMore(torch.nn.Module):  # (h, w) -> (h + 1, w + 1): no scale fits every size
        def forward(self, x):
            return F.pad(x, (0, 1, 0, 1), mode="replicate")

    path = tmp_path / "one_more.onnx"
    _export_by_hand(OneMore(), path, sample=(1, 3, 40, 40))
    with pytest.raises(StylizeError, match=r"not the input size times an integer scale") as exc:
        load_backend(path, device="cpu")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("flag, key", [("--checkpoint", "ckpt"), ("--onnx", "by_hand")])
@pytest.mark.parametrize("hw", [(1, 1), (4, 64)])
def test_cli_tiny_clip(tn_models, tmp_path, capsys, flag, key, hw):
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    h, w = hw
    src = make_test_clip(tmp_path / "in.mkv", width=w, height=h, frames=3, audio=False, pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    assert main([str(src), str(out), flag, str(tn_models[key]), "--device", "cpu"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    with av.open(str(src)) as a, av.open(str(out)) as b:
        ins, outs = list(a.decode(video=0)), list(b.decode(video=0))
    assert len(outs) == len(ins) == 3 and (outs[0].height, outs[0].width) == (h, w)


class Unshuffle3(torch.nn.Module):
    """Pixel-unshuffle by 3, a 1x1 convolution, pixel-shuffle back: sides must be multiples of 3 (none of the
    probe's power-of-two sizes runs)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(27, 27, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(F.pixel_unshuffle(x, 3)), 3)


def test_probe_finds_a_multiple_of_3(tmp_path):
    from stylize_video.pipeline.sizing import probe_bases

    # 64 first, then the smallest multiple >= 64 of each m in PROBE_MULTIPLES that 64 is not a multiple of
    assert probe_bases() == [64, 65, 66, 70, 72, 75, 96]
    net = Unshuffle3().eval()
    path = tmp_path / "mult3.onnx"
    _export_by_hand(net, path, sample=(1, 3, 63, 63))
    with load_backend(path, device="cpu", precision="fp32", convention=ConventionFlags("0-255")) as b:
        assert b.size_rules == SizeRules(minimum=3, multiple_of=3) and b.scale == 1
        x = torch.rand(1, 3, 50, 65) * 255
        with torch.no_grad():
            want = net(pad_bottom_right(x, 51, 66))[..., :50, :65]
        assert float((b(x) - want).abs().max()) < 0.05


def test_an_all_dynamic_nhwc_graph_gets_the_layout_hint(tmp_path):
    class Nhwc(torch.nn.Module):  # (N, H, W, 3) -> same, channels reversed by a 1x1 convolution
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.eye(3).flip(0).view(3, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    path = tmp_path / "nhwc.onnx"
    axes = {0: "n", 1: "h", 2: "w", 3: "c"}  # even the channel dimension is dynamic: nothing to read the layout from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Nhwc(), (torch.rand(1, 8, 8, 3),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes})
    with pytest.raises(StylizeError) as exc:
        load_backend(path, device="cpu", precision="fp32")
    assert str(exc.value) == ("the model does not run on NCHW input but does on NHWC (1x64x64x3): pass --layout nhwc "
                              "(and --channel-order/--value-range if they differ too)")
    with load_backend(path, device="cpu", precision="fp32", convention=ConventionFlags(layout="nhwc")) as b:
        x = torch.rand(1, 3, 5, 7) * 255
        assert torch.allclose(b(x), x.flip(1))
