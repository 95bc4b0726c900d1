"""One clear line for inputs that cannot run: --start past the end, a whole pickled model, a runtime failing on
the warm-up frame or mid-video."""

from __future__ import annotations

import warnings

import onnx
import pytest
import torch
from stylize_video.pipeline.backends.torch import TorchBackend
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


class _FixedReshape(torch.nn.Module):
    """A window reshape baked in at the traced 32x32, as in a Uformer exported "dynamic": ONNX Runtime fails at
    every other size with its own Reshape error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 3, 32 * 32).reshape(x.shape[0], 3, 32, 32)


def test_an_onnx_runtime_failure_is_one_line_naming_the_model(tmp_path, capfd):
    from stylize_video.export.metadata import ModelMetadata, write_metadata
    from stylize_video.export.onnx_export import save_atomic
    from stylize_video.sizerules import SizeRules

    model = tmp_path / "w.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_FixedReshape(), (torch.rand(1, 3, 32, 32),), str(model), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}})
    proto = onnx.load(str(model))
    meta = ModelMetadata(task="restoration", scale=1, arch="test:fixed-reshape", weights_sha256="0" * 64)
    meta.size_rules = SizeRules()  # claims any size, as the reviewer's Uformer export did
    write_metadata(proto, meta)
    save_atomic(proto, model)
    src = make_test_clip(tmp_path / "in.mp4", width=64, height=48, frames=2, audio=False)
    assert main([str(src), str(tmp_path / "out.mp4"), "--onnx", str(model), "--device", "cpu", "-q"]) == 1
    err = capfd.readouterr().err  # the file descriptor: ONNX Runtime's own log is written from C++
    assert err.startswith("stylize-video: error: the model (test:fixed-reshape x1, onnxruntime-cpu on cpu fp32) failed "
                          "on the warm-up frame (mid-grey, 64x48): Fail: Non-zero status code returned while running "
                          "Reshape node.") and err.count("\n") == 1 and "\x1b" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "w.onnx"]


class _FailsOnFrame(TorchBackend):
    """A real torch backend whose runtime fails on its 4th call (warm-up, frames 0 and 1, then frame 2), as a
    CUDA allocation does when memory runs out mid-video."""

    calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore text")
        return super().__call__(x)


def test_a_runtime_failure_mid_video_names_the_frame_and_leaves_no_output(tmp_path, identity_backend):
    from stylize_video.errors import StylizeError
    from stylize_video.pipeline.job import JobOptions, stylize_file

    src = make_test_clip(tmp_path / "in.mp4", frames=6, fps=25, audio=False)
    backend = _FailsOnFrame(identity_backend.model, "cpu", "fp32")
    with pytest.raises(StylizeError) as exc:
        stylize_file(src, tmp_path / "out.mp4", backend, JobOptions(progress=False))
    assert str(exc.value) == ("the model (model x1, torch on cpu fp32) failed on frame 2 (0.080 s): OutOfMemoryError: "
                              "CUDA out of memory. Tried to allocate 2.00 GiB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
