"""``stylize-video --match-histogram``: SR output frames histogram-matched to their input frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.torch import TorchBackend
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.sink import EncoderOptions
from stylize_video.pipeline.job import JobOptions, stylize_file
from stylize_video.pipeline.synth import make_test_clip
from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
from stylize_video.train.networks import SRNet
from torch import nn

LOSSLESS = ["--codec", "libx264", "--crf", "0", "--preset", "ultrafast", "--pix-fmt", "yuv444p", "--quiet"]


class WashedOutUpscale(nn.Module):
    """Test-only x2 "SR" whose output is a monotone distortion of the nearest upscale (low contrast, colour cast).

    Histogram matching to the input must undo it: the nearest upscale has the input's distribution.
    """

    scale = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cast = torch.tensor([40.0, 10.0, -20.0], device=x.device).view(1, 3, 1, 1)
        return F.interpolate(x, scale_factor=2, mode="nearest") * 0.5 + 64 + cast


class NearestUpscale(nn.Module):
    scale = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


@pytest.fixture(scope="module")
def sr_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """A random-weight SRNet x2, saved in our checkpoint format (eval mode: BatchNorm uses its init stats)."""
    torch.manual_seed(3)
    return save_checkpoint(tmp_path_factory.mktemp("hm") / "sr2.pth", SRNet(scale=2).eval(),
                           ModelInfo("sr_net", "sr", 2))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    return make_test_clip(tmp_path_factory.mktemp("hm_clip") / "in.mp4", width=48, height=32, frames=3, audio=False,
                          pattern="noise")


def _rgb(vid, path) -> np.ndarray:
    """(frames, H, W, 3) float64 RGB of a decoded video."""
    return np.stack([f.to_ndarray(format="rgb24") for f in vid.frames(path)]).astype(np.float64)


def test_cli_flag_moves_sr_output_towards_input(tmp_path, clip, sr_checkpoint, vid, capsys) -> None:
    plain, matched, stats = tmp_path / "plain.mkv", tmp_path / "matched.mkv", tmp_path / "stats.json"
    base = ["--checkpoint", str(sr_checkpoint), "--device", "cpu", *LOSSLESS]
    assert main([str(clip), str(plain), *base]) == 0, capsys.readouterr().err
    assert main([str(clip), str(matched), *base, "--match-histogram", "--stats-json", str(stats)]) == 0, \
        capsys.readouterr().err
    assert json.loads(stats.read_text())["match_histogram"] is True
    src, a, b = _rgb(vid, clip), _rgb(vid, plain), _rgb(vid, matched)
    assert a.shape == b.shape == (3, 64, 96, 3) and src.shape == (3, 32, 48, 3)
    assert np.abs(a - b).mean() > 5  # the flag changed the frames
    mean_in, mean_plain, mean_matched = (v.mean(axis=(1, 2)) for v in (src, a, b))  # (frames, channels)
    assert (np.abs(mean_matched - mean_in) < np.abs(mean_plain - mean_in)).all()
    assert np.abs(mean_matched - mean_in).max() < 4  # measured 1.6: YUV round trips, rounding, clamping
    std_in, std_matched = src.std(axis=(1, 2)), b.std(axis=(1, 2))
    assert np.abs(std_matched - std_in).max() < 0.1 * std_in.min()


def test_distortion_is_undone_per_frame(tmp_path, clip, vid) -> None:
    # Through the API (as the live mode and benchmarks call it): a monotone distortion of the nearest
    # upscale, once matched, decodes like the nearest upscale itself.
    enc = EncoderOptions(codec="libx264", crf=0, preset="ultrafast", pix_fmt="yuv444p")
    ref, out = tmp_path / "nearest.mkv", tmp_path / "matched.mkv"
    with TorchBackend(NearestUpscale(), "cpu", "fp32") as b:
        stylize_file(clip, ref, b, JobOptions(encoder=enc, progress=False))
    with TorchBackend(WashedOutUpscale(), "cpu", "fp32") as b:
        stylize_file(clip, out, b, JobOptions(encoder=enc, progress=False, match_histogram=True))
    assert vid.psnr(_rgb(vid, out), _rgb(vid, ref), 255.0) > 35


def test_refused_for_style_models(tmp_path, clip, checkpoints, capsys) -> None:
    out = tmp_path / "o.mkv"
    rc = main([str(clip), str(out), "--checkpoint", str(checkpoints["style"]), "--match-histogram", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert "stylize-video: error: --match-histogram is for super-resolution models" in err
    assert not out.exists() and not list(tmp_path.glob("*o*.mkv"))
    with TorchBackend(nn.Identity(), "cpu", "fp32", scale=1) as b, pytest.raises(StylizeError, match="scale 1"):
        stylize_file(clip, out, b, JobOptions(progress=False, match_histogram=True))
    assert not out.exists()
