"""TransformerNet / SRNet: pytorch/examples key compatibility and output shapes."""

from __future__ import annotations

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.train.checkpoint import load_model
from stylize_video.train.networks import SRNet, TransformerNet, build_network

# pytorch/examples fast_neural_style TransformerNet, written out independently of our module.
_CONV = {"conv1": (32, 3, 9), "conv2": (64, 32, 3), "conv3": (128, 64, 3),
         "deconv1": (64, 128, 3), "deconv2": (32, 64, 3), "deconv3": (3, 32, 9)}
_NORM = {"in1": 32, "in2": 64, "in3": 128, "in4": 64, "in5": 32}


def examples_state_dict(legacy: bool = True) -> dict[str, torch.Tensor]:
    """A state_dict with exactly pytorch/examples' keys (+ pre-0.4 InstanceNorm running stats)."""
    g = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        sd[f"{name}.conv2d.weight"] = torch.randn(cout, cin, k, k, generator=g) * 0.05
        sd[f"{name}.conv2d.bias"] = torch.zeros(cout)

    def norm(name: str, c: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = torch.ones(c), torch.zeros(c)
        if legacy:
            sd[f"{name}.running_mean"], sd[f"{name}.running_var"] = torch.zeros(c), torch.ones(c)

    for name in ("conv1", "conv2", "conv3"):
        conv(name, *_CONV[name])
    for name in ("in1", "in2", "in3"):
        norm(name, _NORM[name])
    for r in range(1, 6):
        conv(f"res{r}.conv1", 128, 128, 3)
        norm(f"res{r}.in1", 128)
        conv(f"res{r}.conv2", 128, 128, 3)
        norm(f"res{r}.in2", 128)
    for name in ("deconv1", "deconv2", "deconv3"):
        conv(name, *_CONV[name])
    for name in ("in4", "in5"):
        norm(name, _NORM[name])
    return sd


def test_examples_key_set_is_ours() -> None:
    assert set(examples_state_dict(legacy=False)) == set(TransformerNet().state_dict())
    assert len(examples_state_dict(legacy=False)) == 62


def test_examples_checkpoint_with_legacy_keys_loads(tmp_path) -> None:
    sd = examples_state_dict()
    assert "in1.running_mean" in sd and "res1.in1.running_var" in sd
    path = tmp_path / "mosaic.pth"
    torch.save(sd, path)
    model, info = load_model(path)
    assert info.source == "pytorch-examples" and info.task == "style" and info.scale == 1
    assert torch.equal(model.state_dict()["res3.conv2.conv2d.weight"], sd["res3.conv2.conv2d.weight"])
    with torch.no_grad():
        y = model(torch.rand(1, 3, 17, 33) * 255)
    assert y.shape == (1, 3, 17, 33) and torch.isfinite(y).all()


@pytest.mark.parametrize("hw", [(1080, 1920), (1081, 1917), (17, 33)])
def test_transformer_output_matches_input_size(hw) -> None:
    # The meta device checks shapes without the ~15 s real 1080p CPU forward.
    with torch.device("meta"):
        model = TransformerNet()
        y = model(torch.empty(2, 3, *hw))
    assert tuple(y.shape) == (2, 3, *hw)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_sr_output_is_scaled(scale) -> None:
    model = SRNet(scale).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, 9, 13) * 255)
    assert y.shape == (1, 3, 9 * scale, 13 * scale)


def test_sr_bad_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        build_network("sr_net", 3)


def test_mismatched_checkpoint_names_keys(tmp_path) -> None:
    sd = examples_state_dict()
    sd.pop("res2.conv1.conv2d.weight")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(StylizeError, match=r"missing keys: res2\.conv1\.conv2d\.weight.*unexpected keys: extra\.weight"):
        load_model(tmp_path / "bad.pth")
