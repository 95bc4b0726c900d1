"""Our checkpoint format: round trip, weights_only loading, one-line errors."""

from __future__ import annotations

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.train.checkpoint import ModelInfo, load_model, save_checkpoint, strip_legacy_keys
from stylize_video.train.networks import SRNet


def test_sr_batchnorm_stats_survive_round_trip(tmp_path) -> None:
    # SRNet's batch norms are named in1 / res.N.in1 like legacy InstanceNorm keys: they must not be dropped.
    model = SRNet(2)
    model.in1.running_mean.fill_(3.0)
    path = save_checkpoint(tmp_path / "sr.pth", model, ModelInfo("sr_net", "sr", 2), optimizer={"x": 1})
    loaded, info = load_model(path)
    assert info.task == "sr" and info.scale == 2
    assert torch.equal(loaded.in1.running_mean, torch.full((64,), 3.0))
    assert not list(tmp_path.glob("*.partial"))
    raw = torch.load(path, weights_only=True)
    assert raw["optimizer"] == {"x": 1}


def test_strip_legacy_keys_keeps_expected() -> None:
    sd = {"in1.running_mean": torch.zeros(1), "res1.in2.running_var": torch.zeros(1), "in1.weight": torch.zeros(1)}
    assert set(strip_legacy_keys(sd)) == {"in1.weight"}
    assert set(strip_legacy_keys(sd, keep={"in1.running_mean"})) == {"in1.running_mean", "in1.weight"}


def test_missing_checkpoint(tmp_path) -> None:
    with pytest.raises(StylizeError, match="checkpoint not found"):
        load_model(tmp_path / "nope.pth")


def test_non_checkpoint_file(tmp_path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(StylizeError) as exc:
        load_model(path)
    # our line, not torch's advice to re-run torch.load with weights_only=False (which would run code)
    assert str(exc.value) == f"{path} is not a PyTorch checkpoint (not a zip or pickle file)"
    path.write_bytes(b"\x80\x02garbage")  # starts like a pickle, is not one torch.save wrote
    with pytest.raises(StylizeError) as exc:
        load_model(path)
    assert str(exc.value) == (f"{path} is not a readable PyTorch checkpoint (damaged or not written by torch.save: "
                              "Unsupported operand 103)")
