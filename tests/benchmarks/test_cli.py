"""``stylize-bench`` end to end with the real pipeline backends, and its one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stylize_video.benchmarks.cli import main
from stylize_video.benchmarks.validate import validate


def test_cpu_smoke_run_under_a_minute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    t0 = time.perf_counter()
    status = main(["--random-weights", "style", "--sizes", "48x32", "--iters", "2", "--warmup", "1",
                   "--clip-frames", "4", "--work-dir", str(tmp_path / "work"), "--out-dir", str(out), "--quiet"])
    elapsed = time.perf_counter() - t0
    assert status == 0, capsys.readouterr().err
    assert elapsed < 60.0
    record = json.loads((out / "bench.json").read_text())
    assert validate(record) == []
    assert record["model"]["random_weights"] == "style"
    by_variant = {r["variant"]: r for r in record["model_results"]}
    assert by_variant["torch-fp32"]["status"] == "ok" and by_variant["torch-fp32"]["speedup"] == 1.0
    if "ort-cpu-fp32" in by_variant:  # ONNX Runtime (CPU) is part of the [cpu] extra
        assert by_variant["ort-cpu-fp32"]["psnr_db"] > 40.0  # same FP32 graph: near-identical outputs
    skipped = {v["label"]: v["reason"] for v in record["variants"] if v["status"] == "skipped"}
    assert all(reason for reason in skipped.values())
    assert (out / "bench.md").read_text().startswith("# stylize-bench")
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stdout = capsys.readouterr().out
    assert "== Model only ==" in stdout and "wrote " not in stdout  # --quiet: the tables, no summary line
    full = next(s for s in record["end_to_end"]["stages"] if s["stage"] == "full")
    assert full["status"] in ("ok", "skipped") and (full["status"] == "ok" or full["reason"])


def test_sr_random_weights_model_only(tmp_path: Path) -> None:
    js = tmp_path / "sr.json"
    assert main(["--random-weights", "sr4", "--sizes", "24x16", "--iters", "1", "--warmup", "0", "--no-e2e",
                 "--backends", "torch-fp32", "--work-dir", str(tmp_path), "--json", str(js), "--quiet"]) == 0
    record = json.loads(js.read_text())
    assert record["model"]["scale"] == 4 and record["model"]["task"] == "sr"
    assert [v["label"] for v in record["variants"]] == ["torch-fp32"]
    assert record["end_to_end"]["status"] == "skipped"


@pytest.mark.parametrize(("argv", "fragment"), [
    ([], "one of the arguments --model --random-weights --from-json --identity-model is required"),
    (["--random-weights", "style", "--model", "x.pth"], "not allowed with"),
    (["--random-weights", "cubism"], "invalid choice"),
    (["--random-weights", "style", "--device", "gpu"], "argument --device: expected auto, cpu, cuda or cuda:N"),
    (["--random-weights", "style", "--sizes", "720i"], "argument --sizes: bad size"),
    (["--random-weights", "style", "--sizes", "0x0"], "both sides must be at least 1 pixel\n"),
    (["--random-weights", "style", "--iters", "0"], "argument --iters: must be >= 1, got '0'"),
    (["--random-weights", "style", "--warmup", "-1"], "argument --warmup: must be >= 0, got '-1'"),
    (["--random-weights", "style", "--batch", "0"], "argument --batch: must be >= 1, got '0'"),
    (["--random-weights", "style", "--throughput-streams", "0"], "argument --throughput-streams: values must be"),
])
def test_usage_errors_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse's convention, as every stylize-* script: usage + one line
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: stylize-bench") and "stylize-bench: error: " in err
    assert fragment in err


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--model", "missing.pth"], "file not found"),
    (["--model", "model.txt"], "unknown model type"),
    (["--random-weights", "style", "--backends", "torch-fp32,warp-drive"], "unknown backend 'warp-drive'"),
    (["--random-weights", "style", "--plot", "chart.jpg"], "give a .png name"),
    (["--random-weights", "style", "--video", "nope.mp4"], "--video nope.mp4: file not found"),
    (["--random-weights", "style", "--json", "model.txt/b.json"], "--json model.txt/b.json: folder does not exist"),
    (["--random-weights", "style", "--out-dir", "model.txt"], "--out-dir model.txt: cannot create it"),
    (["--random-weights", "style", "--markdown", "model.txt"], "--markdown model.txt exists; pass --overwrite"),
])
def test_bad_arguments_give_one_line_error(argv: list[str], fragment: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.txt").write_text("x")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-bench: error: ") and "\n" not in err
    assert fragment in err


@pytest.mark.parametrize(("args", "fragment"), [
    (["--model", "broken.pth"], "is not a PyTorch checkpoint"),
    (["--random-weights", "style", "--video", "clip.mp4"], "cannot read the clip"),
])
def test_unusable_inputs_are_one_line_errors(args: list[str], fragment: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("broken.pth", "clip.mp4"):
        (tmp_path / name).write_bytes(b"not what the name says")
    assert main([*args, "--sizes", "32x24", "--iters", "1", "--work-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-bench: error: ") and "\n" not in err and fragment in err


def test_report_write_failure_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize_video import cliargs

    real = cliargs.os.replace

    def refuse(src, dst):  # only the report: os is one module, and the run itself renames files too
        if Path(dst).name != "r.json":
            return real(src, dst)
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(cliargs.os, "replace", refuse)
    assert main(["--random-weights", "style", "--sizes", "24x16", "--iters", "1", "--warmup", "0", "--no-e2e",
                 "--backends", "torch-fp32", "--work-dir", str(tmp_path), "--json", str(tmp_path / "r.json"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-bench: error: cannot write ") and "\n" not in err and "Permission denied" in err
    assert not list(tmp_path.glob("r.json*"))


def test_reports_rerendered_from_json(sample_record: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "old.json"
    src.write_text(json.dumps(sample_record))
    assert main(["--from-json", str(src), "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png")]) == 0
    assert "== Model only ==" in capsys.readouterr().out
    assert (tmp_path / "r.md").read_text().startswith("# stylize-bench") and (tmp_path / "r.png").is_file()
    src.write_text(json.dumps({"schema": "something else"}))
    assert main(["--from-json", str(src)]) == 1
    err = capsys.readouterr().err
    assert "not a stylize-bench result" in err and err.count("\n") == 1


def test_spandrel_model_benchmarks(spandrel_files, tmp_path: Path) -> None:
    # A published architecture (Real-ESRGAN compact, spandrel-detected) through the same variants as ours.
    js = tmp_path / "compact.json"
    assert main(["--model", str(spandrel_files["compact"]), "--backends", "ort-cpu-fp32", "--sizes", "40x24",
                 "--iters", "1", "--warmup", "0", "--no-e2e", "--work-dir", str(tmp_path / "w"), "--json", str(js),
                 "--quiet"]) == 0
    record = json.loads(js.read_text())
    assert validate(record) == []
    assert record["model"] | {"path": None} == {"path": None, "format": "ckpt", "task": "sr", "scale": 2,
                                                "arch": "RealESRGAN Compact x2 (spandrel)", "random_weights": None}
    ok = {r["variant"]: r for r in record["model_results"] if r["status"] == "ok"}
    assert set(ok) == {"torch-fp32", "ort-cpu-fp32"} and ok["ort-cpu-fp32"]["psnr_db"] > 40.0
    assert (ok["torch-fp32"]["width"], ok["torch-fp32"]["height"]) == (40, 24)
