"""Other people's architectures (spandrel) to ONNX: dynamic H/W with parity against PyTorch, run through both
backends on odd frame sizes; FP16 where the architecture supports it; a one-line refusal where the graph
cannot be size-dynamic."""

from __future__ import annotations

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.cli import main
from stylize_video.export.metadata import read_metadata
from stylize_video.pipeline.backends import load_backend
from stylize_video.sizerules import SizeRules


@pytest.fixture(scope="module")
def exported(spandrel_files, tmp_path_factory):
    """``stylize-export onnx`` of each architecture (the CLI runs its parity checks before writing)."""
    root = tmp_path_factory.mktemp("spandrel_onnx")
    out = {}
    for key in ("compact", "rrdb", "swinir"):
        out[key] = root / f"{key}.onnx"
        assert main(["onnx", str(spandrel_files[key]), str(out[key])]) == 0
    return out


@pytest.mark.parametrize("key, arch, rules", [("compact", "spandrel:Compact", SizeRules()),
                                               ("rrdb", "spandrel:ESRGAN", SizeRules(minimum=2)),
                                               ("swinir", "spandrel:SwinIR", SizeRules(minimum=16))])
def test_exported_metadata(exported, key, arch, rules):
    meta = read_metadata(exported[key])
    assert (meta.arch, meta.task, meta.scale, meta.size_rules) == (arch, "sr", 2, rules)
    assert meta.supports_half == (key != "swinir") and meta.source.startswith("spandrel (")


@pytest.mark.parametrize("key", ["compact", "rrdb", "swinir"])
def test_torch_and_onnx_agree_on_odd_sizes(spandrel_files, exported, key):
    with load_backend(spandrel_files[key], device="cpu", precision="fp32") as pt, \
            load_backend(exported[key], device="cpu", precision="fp32") as ort:
        for hw in ((21, 35), (9, 5), (1, 1)):  # odd; below SwinIR's minimum of 16; a single pixel
            x = torch.rand(1, 3, *hw) * 255.0
            y_pt, y_ort = pt(x), ort(x)
            assert y_pt.shape == y_ort.shape == (1, 3, hw[0] * 2, hw[1] * 2)
            assert float((y_pt - y_ort).abs().max()) < 0.05  # 0..255 scale, the export parity limit
        assert ort(torch.rand(2, 3, 9, 5) * 255.0).shape == (2, 3, 18, 10)  # dynamic batch too


def test_fp16_export_where_supported(spandrel_files, tmp_path, capsys):
    out = tmp_path / "compact16.onnx"
    assert main(["onnx", str(spandrel_files["compact"]), str(out), "--fp16"]) == 0
    assert "x8: PSNR" in capsys.readouterr().out and read_metadata(out).precision == "fp16-mixed"


def test_fp16_refused_where_not_supported(spandrel_files, tmp_path, capsys):
    assert main(["onnx", str(spandrel_files["swinir"]), str(tmp_path / "s16.onnx"), "--fp16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("stylize-export: error: SwinIR x2 (spandrel) does not support FP16 (spandrel: supports_half=False); "
                    "export without --fp16")]
    assert not list(tmp_path.iterdir())


def test_not_size_dynamic_is_refused(spandrel_files, tmp_path, capsys, monkeypatch):
    # Traced at a multiple of its window (48x64), SwinIR's "pad to the window" branch is traced as not taken and
    # the graph fails at other sizes: the export must say so, naming the architecture, and write nothing.
    from stylize_video.export import onnx_export

    monkeypatch.setattr(onnx_export, "_SAMPLE_HW", (48, 64))
    assert main(["onnx", str(spandrel_files["swinir"]), str(tmp_path / "s.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylize-export: error: SwinIR (spandrel:SwinIR) cannot be exported "
                                               "to ONNX with dynamic height/width: the graph is not size-dynamic: "
                                               "it runs at 2x3x64x112 but not at 2x3x45x67 (onnxruntime: ")
    assert not list(tmp_path.iterdir())


def test_fp16_request_falls_back_at_runtime(spandrel_files, exported):
    with pytest.warns(UserWarning, match="does not support FP16"):
        b = load_backend(spandrel_files["swinir"], device="cpu", precision="fp16")
    with b:
        assert b.precision == "fp32"
    with pytest.warns(UserWarning, match="does not support FP16"):
        b = load_backend(exported["swinir"], device="cpu", precision="fp16")
    b.close()


def test_engine_profile_follows_size_rules(exported):
    from stylize_video.export.engine_meta import BuildOptions, check_build_fits
    from stylize_video.export.shapes import ShapeProfile, fit_profile

    meta = read_metadata(exported["swinir"])
    with pytest.raises(StylizeError, match="does not support FP16"):
        check_build_fits(meta, ShapeProfile((16, 16), (270, 480), (960, 960)), BuildOptions(precision="fp16"))
    assert fit_profile(ShapeProfile((5, 5), (270, 480), (960, 960)), meta.size_rules).min == (16, 16)
    with pytest.raises(StylizeError, match="static shape 8x8 breaks the model's size rules .* use 16x16"):
        fit_profile(ShapeProfile((8, 8), (8, 8), (8, 8)), meta.size_rules)
