"""``stylize-export`` end to end on the CPU: onnx (+ --fp16), verify, argument errors, engine and fetch
refusals that must happen before TensorRT or the network is touched."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from stylize_video.export.cli import build_parser, main
from stylize_video.export.metadata import read_metadata


def test_smoke_onnx_bare_pytorch_examples_pth(styled_net, tmp_path, capsys):
    bare = tmp_path / "mosaic.pth"
    state = dict(styled_net.state_dict())
    state["res1.in1.running_var"] = torch.ones(128)  # legacy InstanceNorm key, dropped on load
    torch.save(state, bare)
    out = tmp_path / "mosaic.onnx"
    assert main(["onnx", str(bare), str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity 1x3x45x67: max abs error" in text and f"wrote {out}" in text
    assert text.startswith(f"{out} (fp32 graph):\n")
    meta = read_metadata(out)
    assert meta.source == "pytorch-examples" and meta.precision == "fp32"
    assert main(["verify", str(out), "--checkpoint", str(bare)]) == 0
    assert "parity 1x3x64x112" in capsys.readouterr().out


def test_onnx_fp16_prints_psnr(style_ckpt, tmp_path, capsys):
    out = tmp_path / "m16.onnx"
    assert main(["onnx", str(style_ckpt), str(out), "--fp16"]) == 0
    text = capsys.readouterr().out
    assert "no FP16 InstanceNormalization" in text and "x8: PSNR" in text and "naive fp16" in text
    # the blocks name what they check: the file holds the fp16 graph, the fp32 one is where it comes from
    heads = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert heads == [f"fp32 graph (exported first; {out} gets the fp16 mixed graph below):",
                     f"{out} (fp16 mixed graph):"]
    assert read_metadata(out).precision == "fp16-mixed"
    assert main(["verify", str(out)]) == 0  # no reference: structure + graph assert only


def test_exception_verify_wrong_checkpoint(fp32_onnx_file, make_net, tmp_path, capsys):
    from stylize_video.train.checkpoint import ModelInfo, save_checkpoint

    other = tmp_path / "other.pth"
    save_checkpoint(other, make_net(7), ModelInfo("transformer_net", "style", 1))
    assert main(["verify", str(fp32_onnx_file), "--checkpoint", str(other)]) == 1
    assert "is not the checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["onnx", "missing.pth", "o.onnx"], "checkpoint not found"),
    (["onnx", "missing.pth", "o.onnx", "--fp16-io"], "--fp16-io needs --fp16"),
    (["verify", "missing.onnx"], "ONNX model not found"),
    (["engine", "missing.onnx", "o.plan"], "ONNX model not found"),
])
def test_exception_one_line_errors(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("stylize-export: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", [["verify", "{bad}"], ["engine", "{bad}", "o.plan"],
                                     ["verify", "{good}", "--reference", "{bad}"],
                                     ["verify", "{good}", "--reference", "missing.onnx"]])
def test_exception_unreadable_onnx_is_one_line(command, fp32_onnx_file, tmp_path, capsys):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"this is not a protobuf")
    argv = [a.format(bad=bad, good=fp32_onnx_file) for a in command]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("stylize-export: error: ") and err.count("\n") == 1
    assert "not an ONNX model" in err or "ONNX model not found" in err


def test_engine_from_a_checkpoint_names_the_export_step(style_ckpt, tmp_path, capsys):
    ckpt = tmp_path / "net.pth"
    ckpt.write_bytes(style_ckpt.read_bytes())
    assert main(["engine", str(ckpt), str(tmp_path / "o.plan")]) == 1
    assert capsys.readouterr().err == (f"stylize-export: error: {ckpt} is a PyTorch checkpoint; engines are built from "
                                       f"ONNX: export it with `stylize-export onnx {ckpt} {tmp_path / 'net.onnx'}` first\n")
    assert not (tmp_path / "o.plan").exists()


@pytest.mark.parametrize("extra, message", [
    (["--min-shape", "512x512", "--opt-shape", "256x256"], "min <= opt <= max"),
    (["--static", "64x64", "--max-shape", "128x128"], "cannot be combined"),
    (["--max-shape", "huge"], "HEIGHTxWIDTH"),
    (["--fp16-io"], "--fp16-io needs --fp16"),
])
def test_exception_engine_args_checked_before_tensorrt(fp32_onnx_file, tmp_path, extra, message, capsys):
    assert main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan"), *extra]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_engine_without_tensorrt_is_one_line(fp32_onnx_file, tmp_path, capsys):
    assert main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan"), "--fp16"]) == 1
    assert "TensorRT is not installed" in capsys.readouterr().err
    assert not (tmp_path / "o.plan").exists()


def test_engine_parser_defaults():
    args = build_parser().parse_args(["engine", "m.onnx", "o.plan"])
    assert (args.fp16, args.typing, args.max_batch, args.static) == (False, "auto", 1, None)


def test_exception_fetch_offline(tmp_path, monkeypatch, capsys):
    from stylize_video.export import registry

    monkeypatch.setattr(registry.ZooModel, "url", property(lambda self: "http://127.0.0.1:9/" + self.filename))
    assert main(["fetch", "candy", "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/candy-9.onnx" in err and str(tmp_path / "downloads" / "candy-9.onnx") in err
    assert main(["fetch", "starry-night", "--cache", str(tmp_path)]) == 1
    assert "unknown style" in capsys.readouterr().err


def test_fetch_zoo_style_end_to_end(zoo_like, tmp_path, monkeypatch, capsys):
    from stylize_video.export import registry
    from stylize_video.export.metadata import file_sha256

    _, blob = zoo_like
    src = tmp_path / "served" / "udnie-9.onnx"
    src.parent.mkdir()
    src.write_bytes(blob)
    monkeypatch.setattr(registry, "ZOO", (registry.ZooModel("udnie", 9, "0" * 40, "x", file_sha256(src), len(blob)),))
    monkeypatch.setattr(registry.ZooModel, "url", property(lambda self: src.as_uri()))
    out = tmp_path / "udnie.onnx"
    assert main(["fetch", "udnie", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "imported weights reproduce the zoo graph" in text and "parity 1x3x45x67" in text
    meta = read_metadata(out)
    assert meta.source == "onnx-model-zoo:udnie-9.onnx" and meta.task == "style"
    assert (tmp_path / "cache" / "models" / "udnie.pth").is_file()
