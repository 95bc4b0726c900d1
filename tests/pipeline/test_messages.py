"""One clear line for inputs that cannot run: --start past the end, a whole pickled model."""

from __future__ import annotations

import torch
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_test_clip
from stylize_video.train.networks import TransformerNet


def _error(capsys, *args) -> str:
    rc = main([*map(str, args), "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("stylize-video: error: "), err
    return err[0].removeprefix("stylize-video: error: ")


def test_start_past_the_end_says_so_with_the_duration(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "in.mp4", frames=25, fps=25)  # 1.00 s
    out = tmp_path / "out.mp4"
    assert _error(capsys, src, out, "--onnx", negate_onnx, "--start", "3") == \
        f"--start 3 is past the end of {src} (duration 1.00 s)"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_whole_pickled_model_gets_one_clean_line(tmp_path, capsys):
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    whole = tmp_path / "whole.pth"
    torch.save(TransformerNet(), whole)  # the module object, not its state_dict
    message = _error(capsys, src, tmp_path / "out.mp4", "--checkpoint", whole)
    assert message == (f"{whole} holds a whole pickled model (torch.save(model)), not weights: loading it would run "
                       "code from the file, so it is not loaded. Save the weights instead: "
                       "torch.save(model.state_dict(), 'weights.pth')")
    assert "\x1b" not in message
