"""Other people's architectures through ``load_model``: detected by spandrel however they were saved, run in our
0..255 convention with the same output as spandrel's own call, and one-line errors for what cannot run."""

from __future__ import annotations

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.sizerules import SizeRules
from stylize_video.train.checkpoint import load_model

EXPECTED = {  # file key -> (arch, spandrel name, scale, size rules, supports_half)
    "compact": ("spandrel:Compact", "RealESRGAN Compact", 2, SizeRules(), True),
    "rrdb": ("spandrel:ESRGAN", "ESRGAN", 2, SizeRules(minimum=2), True),
    "rrdb_safetensors": ("spandrel:ESRGAN", "ESRGAN", 2, SizeRules(minimum=2), True),
    "swinir": ("spandrel:SwinIR", "SwinIR", 2, SizeRules(minimum=16), False),
}


@pytest.mark.parametrize("key", list(EXPECTED))
def test_detected_however_published(spandrel_files, spandrel_models, key):
    net, info = load_model(spandrel_files[key])
    arch, name, scale, rules, half = EXPECTED[key]
    assert (info.arch, info.name, info.scale, info.size_rules, info.supports_half) == (arch, name, scale, rules, half)
    assert info.task == "sr" and info.label == f"{name} x2 (spandrel)"
    # Same numbers as the published module on the 0..1 scale, at an odd size that needs no padding.
    x = torch.rand(1, 3, 19, 23)
    original = spandrel_models[key.split("_")[0]]
    with torch.no_grad():
        torch.testing.assert_close(net(x * 255.0), original(x) * 255.0, atol=1e-3, rtol=1e-4)


def test_params_ema_wins_over_params(spandrel_files):
    # swinir_params_ema.pth also holds a Compact under "params": the EMA weights are the published model.
    _net, info = load_model(spandrel_files["swinir"])
    assert info.arch == "spandrel:SwinIR"


def test_transformer_net_state_dicts_still_ours(checkpoints_tn_bare):
    _net, info = load_model(checkpoints_tn_bare)
    assert (info.arch, info.source) == ("transformer_net", "pytorch-examples")


@pytest.fixture
def checkpoints_tn_bare(tmp_path):
    from stylize_video.train.networks import TransformerNet

    path = tmp_path / "candy.pth"
    torch.save(TransformerNet().state_dict(), path)
    return path


def _compact_sd(**kw):
    from spandrel.architectures.Compact import Compact

    return Compact(**{"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 1, "upscale": 2, **kw}).state_dict()


BAD = {  # name -> (writer(path), expected error)
    "unknown.pth": (lambda p: torch.save({"encoder.w": torch.zeros(3, 3), "decoder.w": torch.zeros(2)}, p),
                    r"not a stylize-video checkpoint, a pytorch/examples TransformerNet or an architecture spandrel"),
    "list.pth": (lambda p: torch.save([1, 2, 3], p), r"holds a list, not a state dict"),
    "empty.pth": (lambda p: torch.save({}, p), r"holds an empty dict, not a state dict"),
    "config.pth": (lambda p: torch.save({"lr": 0.1, "epochs": 3}, p), r"holds no tensors: it is not a state dict"),
    "module.pth": (lambda p: torch.save(torch.nn.Conv2d(3, 3, 3), p),
                   r"holds a whole pickled model \(torch\.save\(model\)\), not weights"),
    "grey.pth": (lambda p: torch.save({"params": _compact_sd(num_in_ch=1, num_out_ch=1)}, p),
                 r"takes grey \(1-channel\) images; video frames are RGB"),
    "rgba.pth": (lambda p: torch.save(_compact_sd(num_in_ch=4, num_out_ch=4), p),
                 r"takes RGBA \(4-channel\) images"),
    "notsafe.safetensors": (lambda p: p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"),
                            r"is not a readable safetensors file"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_checkpoints_one_line(tmp_path, name):
    writer, pattern = BAD[name]
    path = tmp_path / name
    writer(path)
    with pytest.raises(StylizeError, match=pattern) as exc:
        load_model(path)
    assert "\n" not in str(exc.value) and "\x1b" not in str(exc.value)


def test_safetensors_with_missing_keys(tmp_path, spandrel_files):
    from safetensors.torch import load_file, save_file

    sd = load_file(str(spandrel_files["rrdb_safetensors"]))
    dropped = sorted(k for k in sd if k.startswith("model.1.sub.0.RDB1.conv2"))
    save_file({k: v for k, v in sd.items() if k not in dropped}, str(tmp_path / "broken.safetensors"))
    with pytest.raises(StylizeError, match=r"broken\.safetensors is detected as ESRGAN but its tensors do not fit it: "
                                           r".*RDB1\.conv2") as exc:
        load_model(tmp_path / "broken.safetensors")
    assert "\n" not in str(exc.value)
