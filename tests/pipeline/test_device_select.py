"""--device auto|cpu|cuda|cuda:N: parsing, refusal on machines without that GPU, and NVDEC on the model's GPU."""

from __future__ import annotations

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.torch import resolve_device
from stylize_video.pipeline.cli import build_parser, main
from stylize_video.pipeline.io.nvdec import make_hwaccel
from stylize_video.pipeline.synth import make_test_clip


def test_device_argument_accepts_an_ordinal_and_refuses_nonsense(capsys):
    assert build_parser().parse_args(["a.mp4", "b.mp4", "--onnx", "m.onnx", "--device", "cuda:1"]).device == "cuda:1"
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["a.mp4", "b.mp4", "--onnx", "m.onnx", "--device", "gpu"])
    assert exc.value.code == 2 and "expected auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_ordinal_without_cuda_is_one_clear_line(tmp_path, checkpoints, capsys):
    clip = make_test_clip(tmp_path / "in.mp4", frames=2, audio=False)
    assert main([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", str(checkpoints["style"]),
                 "--device", "cuda:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-video: error: --device cuda") and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("o*")) and not list(tmp_path.glob(".o*"))


def test_ordinal_beyond_the_machine_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(StylizeError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


def test_nvdec_decodes_on_the_model_gpu(tmp_path):
    from stylize_video.pipeline.live.plan import open_source, plan_io

    assert make_hwaccel(True, 3).device_id == 3 and make_hwaccel(False).device_id == 0
    clip = make_test_clip(tmp_path / "in.mp4", frames=2, audio=False)
    args = build_parser().parse_args([str(clip), str(tmp_path / "o.mp4"), "--onnx", "m.onnx"])
    for device, index in ((torch.device("cuda", 3), 3), (torch.device("cuda"), 0), (torch.device("cpu"), 0)):
        source = open_source(plan_io(args), args, device)
        try:
            assert source.options.hwdec_device == index
        finally:
            source.close()
