"""``stylize-bench`` and the shared conventions (``stylize_video.cliargs``): --json alone is stdout, existing
reports need --overwrite, --device cpu|cuda:N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from stylize_video.benchmarks.cli import main
from stylize_video.benchmarks.machine import Capabilities
from stylize_video.benchmarks.validate import validate
from stylize_video.benchmarks.variants import VARIANTS, resolve_device, skip_reason


def test_json_alone_is_stdout_and_nothing_else(sample_record: dict, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "old.json"
    src.write_text(json.dumps(sample_record))
    assert main(["--from-json", str(src), "--json", "--markdown", str(tmp_path / "r.md")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == sample_record  # no tables on stdout: the JSON document alone
    assert captured.err.strip() == f"wrote {tmp_path / 'r.md'}"


def test_existing_reports_need_overwrite(sample_record: dict, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src, md = tmp_path / "old.json", tmp_path / "r.md"
    src.write_text(json.dumps(sample_record))
    md.write_text("earlier")
    assert main(["--from-json", str(src), "--markdown", str(md)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"stylize-bench: error: --markdown {md} exists; pass --overwrite to replace it"
    assert md.read_text() == "earlier"
    assert main(["--from-json", str(src), "--markdown", str(md), "--overwrite", "-q"]) == 0
    assert md.read_text().startswith("# stylize-bench") and "wrote" not in capsys.readouterr().out


def test_device_cpu_skips_the_gpu_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--random-weights", "sr4", "--sizes", "24x16", "--iters", "1", "--warmup", "0", "--no-e2e",
                 "--backends", "torch-fp32,torch-fp16", "--device", "cpu", "--work-dir", str(tmp_path),
                 "--json", "-", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert validate(record) == []
    status = {v["label"]: (v["status"], v["device"], v["reason"]) for v in record["variants"]}
    assert status == {"torch-fp32": ("ran", "cpu", None), "torch-fp16": ("skipped", "cuda", "--device cpu given")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_missing_gpu_is_refused_before_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--random-weights", "style", "--device", "cuda:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-bench: error: --device cuda:1 asked for") and "\n" not in err


def test_gpu_variants_run_on_the_chosen_gpu() -> None:
    caps = Capabilities(cuda=True, ort_providers=("CUDAExecutionProvider",), tensorrt=True, gpu="cuda:1")
    assert resolve_device(VARIANTS["torch-fp32"], caps) == "cuda:1"  # the baseline runs where the others run
    assert resolve_device(VARIANTS["ort-cuda-fp16"], caps) == "cuda:1"
    assert resolve_device(VARIANTS["ort-cpu-fp32"], caps) == "cpu"
    off = Capabilities(cuda=False, ort_providers=(), tensorrt=False, no_gpu_reason="--device cpu given")
    assert skip_reason(VARIANTS["torch-fp16"], off, "ckpt") == "--device cpu given"


def test_reports_may_not_share_a_file_or_replace_an_input(sample_record: dict, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    src, r2 = tmp_path / "old.json", tmp_path / "r2.json"
    src.write_text(json.dumps(sample_record))
    assert main(["--from-json", str(src), "--json", str(r2), "--markdown", str(r2)]) == 1
    assert capsys.readouterr().err.strip() == (f"stylize-bench: error: two outputs share {r2} (--json {r2} and "
                                               f"--markdown {r2})")
    assert main(["--from-json", str(src), "--json", str(src), "--overwrite"]) == 1
    assert "would overwrite the input --from-json" in capsys.readouterr().err
    assert json.loads(src.read_text()) == sample_record and not r2.exists()


@pytest.mark.parametrize("flag", ["--markdown", "--plot"])
def test_only_json_writes_to_stdout(flag: str, sample_record: dict, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "old.json"
    src.write_text(json.dumps(sample_record))
    assert main(["--from-json", str(src), flag, "-"]) == 1
    assert capsys.readouterr().err.strip() == (f"stylize-bench: error: {flag} writes a file: give a path (only "
                                               "--json writes to stdout, with -)")
    assert not (tmp_path / "-").exists()


def test_reports_go_into_a_fifo_in_place(sample_record: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         fifo) -> None:
    src = tmp_path / "old.json"
    src.write_text(json.dumps(sample_record))
    path, read = fifo
    assert main(["--from-json", str(src), "--json", str(path), "-q"]) == 0  # no --overwrite needed: not replaced
    assert json.loads(read()) == sample_record and path.is_fifo()
