"""Model files per variant, made with the export stage's API, cached by weights hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from stylize_video.benchmarks.artifacts import Artifacts, describe_model, make_random_checkpoint
from stylize_video.benchmarks.model_bench import SkipVariant
from stylize_video.benchmarks.quality import synthetic_frames
from stylize_video.benchmarks.variants import VARIANTS
from stylize_video.train.checkpoint import load_model


@pytest.mark.parametrize(("kind", "scale"), [("style", 1), ("sr4", 4)])
def test_random_checkpoint_outputs_cover_the_range(tmp_path: Path, kind: str, scale: int) -> None:
    path = make_random_checkpoint(kind, tmp_path, seed=0)
    model, info = load_model(path)
    assert info.scale == scale and info.config["random_weights"] is True
    with torch.no_grad():
        y = model(synthetic_frames(1, 24, 32, seed=5))
    assert y.shape == (1, 3, 24 * scale, 32 * scale)
    # Not clamped to black: PSNR between backends must be able to see a difference.
    assert 90.0 < float(y.mean()) < 170.0 and float(y.std()) > 20.0
    assert describe_model(path, "ckpt", kind) == {"path": str(path), "format": "ckpt", "task": info.task,
                                                  "scale": scale, "arch": info.label, "random_weights": kind}


def test_onnx_exports_are_made_once_and_reused(tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common", reason="onnxconverter-common not installed: no FP16 graphs")
    ckpt = make_random_checkpoint("style", tmp_path)
    made = []
    art = Artifacts(ckpt, "ckpt", tmp_path, log=made.append)
    assert art(VARIANTS["torch-fp32"]) == ckpt
    fp32 = art(VARIANTS["ort-cpu-fp32"])
    fp16 = art(VARIANTS["ort-cuda-fp16"])
    assert fp32.suffix == ".onnx" and fp16.name.endswith("-fp16.onnx") and fp16 != fp32
    assert describe_model(fp32, "onnx", None)["scale"] == 1
    # A second run over the same work dir exports nothing.
    again: list[str] = []
    art2 = Artifacts(ckpt, "ckpt", tmp_path, log=again.append)
    assert art2(VARIANTS["ort-cpu-fp32"]) == fp32 and art2(VARIANTS["ort-cuda-fp16"]) == fp16
    assert len(made) == 2 and again == []
    # Given the FP16 graph itself, FP32 variants are skipped with the reason; the FP16 one uses it as is.
    from_fp16 = Artifacts(fp16, "onnx", tmp_path)
    with pytest.raises(SkipVariant, match="already an FP16 graph"):
        from_fp16(VARIANTS["ort-cpu-fp32"])
    assert from_fp16(VARIANTS["ort-cuda-fp16"]) == fp16


def test_engine_input_runs_only_engines(tmp_path: Path) -> None:
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"engine")
    art = Artifacts(plan, "plan", tmp_path)
    assert art(VARIANTS["tensorrt-fp16"]) == plan
    with pytest.raises(SkipVariant, match="needs a PyTorch checkpoint"):
        art(VARIANTS["torch-fp32"])
