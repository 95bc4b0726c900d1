"""``stylize-train style|sr``: training lowers the loss, resume is exact, bad inputs are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from stylize_video.train.checkpoint import load_model
from stylize_video.train.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:loss network uses RANDOM VGG weights")

TINY = ["--vgg-weights", "random", "--image-size", "32", "--batch-size", "2", "--workers", "0",
        "--log-every", "1", "--sample-every", "10", "--device", "cpu"]


def _losses(out) -> list[float]:
    return [json.loads(line)["total"] for line in (out / "log.jsonl").read_text().splitlines()]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "expected an error message"
    return err[-1]


def test_style_training_lowers_loss_and_resumes_exactly(tmp_path, image_folder, style_image, capsys) -> None:
    out = tmp_path / "run"
    argv = ["style", "--style-image", str(style_image), "--data", str(image_folder), "--out", str(out),
            "--iterations", "30", "--checkpoint-every", "15", *TINY]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipping 1 unreadable image(s)" in captured.err and "broken.jpg" in captured.err
    losses = _losses(out)
    assert len(losses) == 30
    # Deterministic on CPU (seed 42, 1 thread); measured here: first-5 mean 1.11, last-5 mean 0.39 (ratio 0.35).
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_0000010.png", "step_0000020.png", "step_0000030.png"]

    ckpt = torch.load(out / "checkpoints" / "step_0000015.pth", weights_only=True)
    assert ckpt["step"] == 15 and ckpt["data"]["samples_seen"] == 30 and "optimizer" in ckpt and "rng" in ckpt

    resumed = tmp_path / "resumed"
    assert main(["style", "--data", str(image_folder), "--out", str(resumed), "--workers", "0",
                 "--resume", str(out / "checkpoints" / "step_0000015.pth")]) == 0
    a = torch.load(out / "model.pth", weights_only=True)["state_dict"]
    b = torch.load(resumed / "model.pth", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _model, info = load_model(resumed / "model.pth")
    assert info.step == 30 and info.task == "style" and info.config["task"]["image_size"] == 32

    # Changing the optimisation while resuming is refused; a final model is not a training checkpoint.
    capsys.readouterr()
    assert main(["style", "--data", str(image_folder), "--out", str(tmp_path / "x"), "--style-weight", "3",
                 "--resume", str(out / "checkpoints" / "step_0000015.pth")]) == 1
    assert "cannot change loss.style_weight when resuming" in _error_line(capsys)
    assert main(["style", "--data", str(image_folder), "--out", str(tmp_path / "x"),
                 "--resume", str(out / "model.pth")]) == 1
    assert "not a training checkpoint" in _error_line(capsys)


@pytest.mark.parametrize("loss", ["feature", "pixel"])
def test_sr_training_smoke(tmp_path, image_folder, loss) -> None:
    out = tmp_path / loss
    argv = ["sr", "--scale", "4", "--loss", loss, "--data", str(image_folder), "--out", str(out),
            "--patch-size", "32", "--iterations", "3", *[a for a in TINY if a not in ("--image-size", "32")]]
    assert main(argv) == 0
    model, info = load_model(out / "model.pth")
    assert info.task == "sr" and info.scale == 4 and info.config["task"]["loss_kind"] == loss
    assert {"pixel": "pixel", "feature": "content"}[loss] in json.loads((out / "log.jsonl").read_text().splitlines()[0])
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8) * 255).shape == (1, 3, 32, 32)
    assert (out / "samples" / "step_0000003.png").is_file()


def test_empty_data_folder(tmp_path, style_image, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["style", "--style-image", str(style_image), "--data", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "o"), *TINY]) == 1
    assert _error_line(capsys).startswith("stylize-train: error: no images under")


def test_only_unreadable_images(tmp_path, style_image, capsys) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"junk")
    assert main(["style", "--style-image", str(style_image), "--data", str(tmp_path / "junk"),
                 "--out", str(tmp_path / "o"), *TINY]) == 1
    assert "no readable images" in _error_line(capsys)


def test_unreadable_style_image(tmp_path, image_folder, capsys) -> None:
    bad = tmp_path / "style.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["style", "--style-image", str(bad), "--data", str(image_folder), "--out", str(tmp_path / "o"),
                 *TINY]) == 1
    assert _error_line(capsys).startswith(f"stylize-train: error: cannot read style image {bad}")


def test_missing_style_image(tmp_path, image_folder, capsys) -> None:
    assert main(["style", "--data", str(image_folder), "--out", str(tmp_path / "o"), *TINY]) == 1
    assert "--style-image is required" in _error_line(capsys)


@pytest.mark.parametrize("scale", ["3", "0", "16"])
def test_sr_bad_scale(tmp_path, image_folder, capsys, scale) -> None:
    with pytest.raises(SystemExit) as exc:  # a usage error (argparse choices)
        main(["sr", "--scale", scale, "--data", str(image_folder), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert f"argument --scale: invalid choice: {scale} (choose from 2, 4, 8)" in _error_line(capsys)


def test_unknown_layer_name(tmp_path, image_folder, style_image, capsys) -> None:
    assert main(["style", "--style-image", str(style_image), "--data", str(image_folder), "--out",
                 str(tmp_path / "o"), "--style-layers", "relu1_2,relu9_1", *TINY]) == 1
    assert "unknown vgg16 layer 'relu9_1'" in _error_line(capsys)


def test_missing_resume_checkpoint(tmp_path, image_folder, capsys) -> None:
    assert main(["style", "--data", str(image_folder), "--out", str(tmp_path / "o"),
                 "--resume", str(tmp_path / "nope.pth")]) == 1
    assert "checkpoint not found" in _error_line(capsys)


def test_random_vgg_warns_on_one_line(tmp_path, image_folder, style_image, capsys) -> None:
    with pytest.warns(UserWarning, match="RANDOM VGG weights"):
        assert main(["style", "--style-image", str(style_image), "--data", str(image_folder), "--out",
                     str(tmp_path / "o"), "--iterations", "1", *TINY]) == 0


def test_out_is_a_file(tmp_path, image_folder, style_image, capsys) -> None:
    (tmp_path / "taken").write_text("not a folder")
    assert main(["style", "--style-image", str(style_image), "--data", str(image_folder), "--out",
                 str(tmp_path / "taken"), "--iterations", "1", *TINY]) == 1
    assert _error_line(capsys).startswith("stylize-train: error: cannot create output folder")


def test_style_image_too_small_for_vgg(tmp_path, image_folder, style_image, capsys) -> None:
    assert main(["style", "--style-image", str(style_image), "--data", str(image_folder), "--out",
                 str(tmp_path / "o"), "--style-size", "4", "--iterations", "1", *TINY]) == 1
    assert "--style-size" in _error_line(capsys)


def test_sr_negative_blur(tmp_path, image_folder, capsys) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse (cliargs.number): a usage error
        main(["sr", "--blur-sigma", "-1", "--data", str(image_folder), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "argument --blur-sigma: must be >= 0, got '-1'" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "1"])
def test_no_decodable_image(tmp_path, make_images, style_image, capsys, workers) -> None:
    # Headers parse (so the start-up check passes) but every file's pixel data is truncated.
    for path in make_images(tmp_path / "trunc", 2):
        path.write_bytes(path.read_bytes()[:200])
    argv = ["style", "--style-image", str(style_image), "--data", str(tmp_path / "trunc"), "--out",
            str(tmp_path / "o"), "--iterations", "1", *TINY]
    argv[argv.index("--workers") + 1] = workers
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("stylize-train: error: no image under") and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("flag", ["--content-weight", "--style-weight", "--tv-weight"])
def test_negative_loss_weight_is_a_usage_error(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exc:
        main(["style", "--style-image", "s.png", "--data", "d", "--out", str(tmp_path / "o"), flag, "-1"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"argument {flag}: must be >= 0, got '-1'")


def test_layer_weights_must_be_finite(tmp_path, image_folder, style_image, capsys):
    assert main(["style", "--style-image", str(style_image), "--data", str(image_folder), "--out",
                 str(tmp_path / "o"), "--style-layers", "relu1_2:nan", "--iterations", "1", *TINY]) == 1
    assert _error_line(capsys).endswith("layer weight in 'relu1_2:nan' must be a finite number >= 0")


def test_bicubic_with_a_checkpoint_is_refused(tmp_path, capsys):
    rc = main(["eval-sr", "--method", "bicubic", "--checkpoint", str(tmp_path / "x.pth"), "--scale", "4",
               "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "drop --checkpoint" in err[0]
