"""``stylize-export list``, and the shared conventions (``stylize_video.cliargs``) on every subcommand."""

from __future__ import annotations

import json

import pytest
import torch
from stylize_video.export import registry
from stylize_video.export.cli import main
from stylize_video.export.metadata import read_metadata


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fetch cache (found through $STYLIZE_CACHE, as fetch and stylize-video --style find it) holding mosaic."""
    root = tmp_path / "cache"
    (root / "models").mkdir(parents=True)
    (root / "downloads").mkdir()
    (root / "models" / "mosaic.onnx").write_bytes(b"onnx")
    (root / "models" / "mosaic.pth").write_bytes(b"pth")
    (root / "models" / "udnie.pth").write_bytes(b"pth")
    (root / "downloads" / "mosaic-9.onnx").write_bytes(b"zoo file")
    monkeypatch.setenv("STYLIZE_CACHE", str(root))
    return root


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_list_table(cache, capsys) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["STYLE", "TASK", "SOURCE", "LICENCE"]
    rows = {(line.split()[0], line.split()[2], line.split()[-1]) for line in lines[1:-1]}
    assert ("mosaic", "zoo", str(cache / "models" / "mosaic.onnx")) in rows  # ONNX first, as --style picks
    assert ("udnie", "pytorch-examples", str(cache / "models" / "udnie.pth")) in rows
    assert ("candy", "zoo", "-") in rows
    assert len(lines) == len(registry.ZOO) + len(registry.PYTORCH_EXAMPLES.members) + 2  # header, rows, cache line
    assert lines[-1].startswith(f"cache: {cache}")


def test_list_json_to_stdout(cache, capsys) -> None:
    assert main(["list", "--json"]) == 0  # no positionals: --json alone is stdout, and stdout is only the JSON
    listing = json.loads(capsys.readouterr().out)
    assert listing["cache"] == str(cache)
    rows = {(r["style"], r["source"], r["opset"]): r for r in listing["styles"]}
    assert set(rows) == {(m.style, "zoo", m.opset) for m in registry.ZOO} | {
        (s, "pytorch-examples", None) for s in registry.PYTORCH_EXAMPLES.members}
    mosaic = rows[("mosaic", "zoo", 9)]
    assert mosaic == {"style": "mosaic", "task": "style", "source": "zoo", "opset": 9, "url": registry.zoo_model(
        "mosaic").url, "sha256": registry.zoo_model("mosaic").sha256, "sha256_pinned": True, "licence": "BSD-3-Clause",
        "filename": "mosaic-9.onnx", "download": str(cache / "downloads" / "mosaic-9.onnx"),
        "local_path": str(cache / "models" / "mosaic.onnx")}
    unpinned = rows[("mosaic", "pytorch-examples", None)]
    assert unpinned["sha256"] is None and not unpinned["sha256_pinned"] and unpinned["download"] is None
    assert rows[("candy", "zoo", 8)]["local_path"] is None


def test_list_json_file_and_overwrite(cache, tmp_path, capsys) -> None:
    js = tmp_path / "styles.json"
    assert main(["list", "--json", str(js), "--cache", str(tmp_path / "empty")]) == 0
    assert "STYLE" in capsys.readouterr().out  # with a file, the table still goes to stdout
    assert all(r["local_path"] is None for r in json.loads(js.read_text())["styles"])
    assert main(["list", "--json", str(js)]) == 1
    assert _one_error_line(capsys) == f"stylize-export: error: --json {js} exists; pass --overwrite to replace it"
    assert main(["list", "--json", str(js), "--overwrite"]) == 0
    assert json.loads(js.read_text())["cache"] == str(cache)


def test_onnx_refuses_an_existing_output_before_any_work(style_ckpt, tmp_path, capsys) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"earlier")
    # The checkpoint does not even exist: the output is checked first.
    assert main(["onnx", str(tmp_path / "missing.pth"), str(out)]) == 1
    assert _one_error_line(capsys) == f"stylize-export: error: {out} exists; pass --overwrite to replace it"
    assert main(["onnx", str(style_ckpt), str(out), "--overwrite", "-q"]) == 0
    assert capsys.readouterr().out == ""  # -q: the checks ran, nothing printed
    assert read_metadata(out).task == "style"
    assert main(["verify", str(out), "-q"]) == 0 and capsys.readouterr().out == ""


def test_onnx_refuses_to_replace_its_checkpoint_and_names_too_long(tmp_path, capsys) -> None:
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"the user's checkpoint")
    assert main(["onnx", str(ckpt), str(ckpt), "--overwrite"]) == 1
    assert _one_error_line(capsys) == (f"stylize-export: error: output {ckpt} would overwrite the input checkpoint "
                                       f"{ckpt}")
    assert ckpt.read_bytes() == b"the user's checkpoint"
    out = tmp_path / ("o" * 300 + ".onnx")
    assert main(["onnx", str(ckpt), str(out)]) == 1  # before the checkpoint is read
    assert _one_error_line(capsys) == f"stylize-export: error: cannot write {out}: File name too long"


def test_engine_refuses_an_existing_sidecar(fp32_onnx_file, tmp_path, capsys) -> None:
    (tmp_path / "o.plan.json").write_text("{}")
    assert main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan")]) == 1
    assert _one_error_line(capsys).endswith("o.plan.json exists; pass --overwrite to replace it")


def test_engine_device(fp32_onnx_file, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan"), "--device", "gpu"])
    assert exc.value.code == 2 and "expected auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err
    assert main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan"), "--device", "cpu"]) == 1
    assert "TensorRT builds engines on a CUDA GPU" in _one_error_line(capsys)
    if not torch.cuda.is_available():
        assert main(["engine", str(fp32_onnx_file), str(tmp_path / "o.plan"), "--device", "cuda:1"]) == 1
        assert "--device cuda:1 asked for" in _one_error_line(capsys)
    assert not list(tmp_path.glob("o.plan*"))


def test_fetch_out_is_refused_before_the_download(tmp_path, capsys) -> None:
    out = tmp_path / "candy.onnx"
    out.write_bytes(b"earlier")
    assert main(["fetch", "candy", "--cache", str(tmp_path / "c"), "--out", str(out)]) == 1
    assert _one_error_line(capsys).endswith(f"{out} exists; pass --overwrite to replace it")
    assert not (tmp_path / "c").exists()
