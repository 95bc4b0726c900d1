"""``stylize-train eval-sr``: bicubic baseline, model checkpoints, inf PSNR, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from train.checkpoint import ModelInfo, save_checkpoint
from train.cli import main
from train.eval_sr import bicubic_upscaler, score_image
from train.networks import SRNet, TransformerNet


@pytest.fixture
def hr_folder(tmp_path, make_images):
    root = tmp_path / "hr"
    make_images(root, 2, size=(50, 46))  # 50x46 crops to 48x44 for x4
    Image.new("RGB", (40, 40), (90, 140, 200)).save(root / "flat.png")  # bicubic is exact on constants
    return root


def test_bicubic_json(hr_folder, capsys) -> None:
    assert main(["eval-sr", "--method", "bicubic", "--data", str(hr_folder), "--scale", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in report["images"]}
    assert report["method"] == "bicubic" and report["scale"] == 4 and len(by_name) == 3
    assert by_name["flat.png"]["psnr"] is None and by_name["flat.png"]["ssim"] == pytest.approx(1.0)
    assert 0 < by_name["img0.png"]["psnr"] < 40
    assert report["mean"]["psnr"] is None  # the mean over an infinite value is infinite


def test_bicubic_table(hr_folder, capsys) -> None:
    assert main(["eval-sr", "--method", "bicubic", "--data", str(hr_folder), "--scale", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["image", "PSNR", "(dB)", "SSIM"]
    assert any(line.startswith("flat.png") and " inf " in line for line in lines)
    assert lines[-1].startswith("mean")


def test_score_matches_formula_on_crop() -> None:
    g = torch.Generator().manual_seed(0)
    hr = (torch.rand(3, 33, 35, generator=g) * 255).to(torch.uint8)
    p, s = score_image(hr, 4, bicubic_upscaler(4))
    assert math.isfinite(p) and -1 < s < 1


def test_checkpoint_eval_and_scale_mismatch(tmp_path, hr_folder, capsys) -> None:
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "sr2.pth", SRNet(2).eval(), ModelInfo("sr_net", "sr", 2))
    assert main(["eval-sr", "--checkpoint", str(path), "--data", str(hr_folder), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "model" and report["scale"] == 2 and len(report["images"]) == 3
    assert main(["eval-sr", "--checkpoint", str(path), "--data", str(hr_folder), "--scale", "4"]) == 1
    assert "does not match the checkpoint's scale 2" in capsys.readouterr().err


def test_style_checkpoint_refused(tmp_path, hr_folder, capsys) -> None:
    path = save_checkpoint(tmp_path / "style.pth", TransformerNet(), ModelInfo("transformer_net", "style", 1))
    assert main(["eval-sr", "--checkpoint", str(path), "--data", str(hr_folder)]) == 1
    assert "not a super-resolution one" in capsys.readouterr().err


def test_eval_errors(tmp_path, hr_folder, capsys) -> None:
    assert main(["eval-sr", "--checkpoint", str(tmp_path / "none.pth"), "--data", str(hr_folder)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.arange(10, dtype=np.uint8).tobytes())
    assert main(["eval-sr", "--checkpoint", str(junk), "--data", str(hr_folder)]) == 1
    assert "is not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["eval-sr", "--method", "bicubic", "--scale", "1", "--data", str(hr_folder)]) == 1
    assert "--scale must be an integer of at least 2" in capsys.readouterr().err
    assert main(["eval-sr", "--data", str(hr_folder), "--method", "model"]) == 1
    assert "--checkpoint is required" in capsys.readouterr().err
