"""``stylize-train`` follows the shared command-line conventions (``stylize_video.cliargs``): --json PATH|-,
--overwrite refused before work, --device checked by argparse (spelling, exit 2) and before the images (machine)."""

from __future__ import annotations

import json

import pytest
import torch
from stylize_video.train.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:loss network uses RANDOM VGG weights")

TINY = ["--vgg-weights", "random", "--image-size", "32", "--batch-size", "2", "--workers", "0", "--device", "cpu"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_eval_sr_json_to_a_file_keeps_the_table_and_refuses_to_replace_it(tmp_path, make_images, capsys) -> None:
    hr = tmp_path / "hr"
    make_images(hr, 1, size=(32, 32))
    js = tmp_path / "scores.json"
    argv = ["eval-sr", "--method", "bicubic", "--scale", "2", "--data", str(hr), "--json", str(js)]
    assert main(argv) == 0
    assert json.loads(js.read_text())["images"][0]["name"] == "img0.png"
    assert "img0.png" in capsys.readouterr().out  # with a file, the table still goes to stdout
    js.write_text("earlier")
    assert main(argv) == 1
    assert _one_error_line(capsys) == f"stylize-train: error: --json {js} exists; pass --overwrite to replace it"
    assert js.read_text() == "earlier"
    assert main([*argv, "--overwrite", "-q"]) == 0
    assert json.loads(js.read_text())["scale"] == 2


def test_eval_sr_json_dash_is_the_document_alone(tmp_path, make_images, capsys) -> None:
    make_images(tmp_path / "hr", 1, size=(32, 32))
    assert main(["eval-sr", "--method", "bicubic", "--data", str(tmp_path / "hr"), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "bicubic"


@pytest.mark.parametrize("command", [["style", "--style-image", "s.png", "--out", "o"], ["sr", "--out", "o"],
                                     ["eval-sr", "--method", "bicubic"]])
def test_device_spelling_is_a_usage_error(command, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--data", "d", "--device", "gpu0"])
    assert exc.value.code == 2
    assert "argument --device: expected auto, cpu, cuda or cuda:N, got 'gpu0'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_missing_gpu_is_refused_before_the_images_are_read(tmp_path, capsys) -> None:
    # The data folder does not exist: the device error must come first.
    assert main(["sr", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--device", "cuda:1"]) == 1
    assert _one_error_line(capsys).startswith("stylize-train: error: --device cuda:1 asked for")
    assert not (tmp_path / "o").exists()


def test_out_with_an_earlier_run_needs_overwrite(tmp_path, image_folder, style_image, capsys) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "log.jsonl").write_text('{"step": 99}\n')
    (out / "checkpoints" / "step_0000099.pth").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    argv = ["style", "--style-image", str(style_image), "--data", str(image_folder), "--out", str(out),
            "--iterations", "1", *TINY]
    assert main(argv) == 1
    assert "holds an earlier run" in _one_error_line(capsys) and not (out / "model.pth").exists()
    assert main([*argv, "--overwrite", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # -q: no "saved ..." summary (and no bar: stderr is not a terminal anyway)
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000001.pth"]
    assert (out / "notes.txt").read_text() == "mine"  # only what a run writes is removed
    # Continuing that run from one of its own checkpoints needs no --overwrite.
    assert main(["style", "--data", str(image_folder), "--out", str(out), "--iterations", "2", "--workers", "0",
                 "--resume", str(out / "checkpoints" / "step_0000001.pth"), "-q"]) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def _earlier_run(out) -> dict[str, bytes]:
    """An --out folder holding every file a run writes; returns what is there, to compare after a refusal."""
    for sub in ("checkpoints", "samples"):
        (out / sub).mkdir(parents=True)
    files = {"model.pth": b"model", "log.jsonl": b'{"step": 9}\n', "checkpoints/step_0000009.pth": b"ckpt",
             "samples/step_0000009.png": b"png"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: (out / name).read_bytes() for name in files}


def _left(out) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_overwrite_removes_nothing_until_every_check_passed(tmp_path, make_images, style_image, capsys,
                                                            monkeypatch) -> None:
    """The earlier run survives a loss network that cannot be loaded, offline ImageNet weights included."""
    out, data = tmp_path / "run1", tmp_path / "data"
    before = _earlier_run(out)
    make_images(data, 2)
    argv = ["style", "--style-image", str(style_image), "--data", str(data), "--out", str(out),
            "--iterations", "1", "--image-size", "32", "--workers", "0", "--device", "cpu", "--overwrite"]
    assert main([*argv, "--vgg-weights", str(tmp_path / "nonexist.pth")]) == 1
    assert "VGG weights file not found" in _one_error_line(capsys) and _left(out) == before

    import urllib.error

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert main(argv) == 1  # --vgg-weights imagenet, the default
    captured = capsys.readouterr()
    assert captured.out == ""  # torch's own 'Downloading: "https://..."' line went to stdout
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylize-train: error: cannot load VGG16 ImageNet weights")
    assert _left(out) == before
    with pytest.raises(SystemExit):
        main([*argv, "--lr", "nan"])
    assert _left(out) == before
    fresh = tmp_path / "run2"  # without --overwrite, a new --out is not created for a run that cannot start
    assert main([a if a != str(out) else str(fresh) for a in argv[:-1]]) == 1
    capsys.readouterr()
    assert not fresh.exists()


def test_an_input_inside_what_overwrite_removes_is_refused(tmp_path, image_folder, style_image, capsys) -> None:
    out = tmp_path / "run"
    before = _earlier_run(out)
    base = ["style", "--style-image", str(style_image), "--data", str(image_folder), "--out", str(out), *TINY,
            "--overwrite"]
    argv = [*base[:base.index("--vgg-weights") + 1], str(out / "model.pth"), *base[base.index("--vgg-weights") + 2:]]
    assert main(argv) == 1
    assert _one_error_line(capsys).endswith(f"--out {out / 'model.pth'} would overwrite the input --vgg-weights "
                                            f"{out / 'model.pth'}")
    argv = [*base[:2], str(out / "samples" / "step_0000009.png"), *base[3:]]
    assert main(argv) == 1
    assert "is inside the output folder --out" in _one_error_line(capsys)
    assert _left(out) == before


def test_eval_sr_refuses_to_replace_a_data_image_and_writes_fifos_in_place(tmp_path, make_images, capsys,
                                                                           fifo) -> None:
    hr = tmp_path / "hr"
    make_images(hr, 1, size=(32, 32))
    image = (hr / "img0.png").read_bytes()
    base = ["eval-sr", "--method", "bicubic", "--scale", "2", "--data", str(hr)]
    assert main([*base, "--json", str(hr / "img0.png"), "--overwrite"]) == 1
    assert _one_error_line(capsys).endswith("would overwrite a file in the input folder --data " + str(hr))
    assert (hr / "img0.png").read_bytes() == image
    path, read = fifo
    assert main([*base, "--json", str(path), "-q"]) == 0  # no --overwrite: a FIFO is written, not replaced
    assert json.loads(read())["images"][0]["name"] == "img0.png"
    assert main([*base, "--json", "/dev/null"]) == 0
    capsys.readouterr()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_eval_sr_bicubic_checks_the_device_too(tmp_path, make_images, capsys) -> None:
    make_images(tmp_path / "hr", 1, size=(32, 32))
    assert main(["eval-sr", "--method", "bicubic", "--data", str(tmp_path / "hr"), "--device", "cuda"]) == 1
    assert _one_error_line(capsys).startswith("stylize-train: error: --device cuda asked for")


def test_an_out_name_the_file_system_refuses_is_one_line(tmp_path, capsys) -> None:
    out = tmp_path / ("o" * 300)
    assert main(["sr", "--data", str(tmp_path), "--out", str(out), "--device", "cpu"]) == 1
    assert _one_error_line(capsys) == f"stylize-train: error: cannot create output folder {out}: File name too long"
