"""Tiled inference: the seams' weights, output equal to untiled where the overlap covers the receptive field,
tiles batched through the backend, and the refusals that come before any work."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends import load_backend
from stylize_video.pipeline.backends.torch import TorchBackend
from stylize_video.pipeline.tiling import TiledBackend, TileOptions, edge_weights, tile_starts


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 255) - b.clamp(0, 255)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("length, tile, overlap", [(100, 32, 8), (300, 256, 32), (97, 40, 12), (64, 64, 8),
                                                   (65, 16, 0), (1000, 200, 99)])
def test_weights_partition_unity(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))  # every seam overlaps >= overlap
    for scale in (1, 2):
        total = torch.zeros(length * scale)
        for s, w in zip(starts, edge_weights(starts, min(tile, length), scale)):
            total[s * scale:(s + min(tile, length)) * scale] += w
        assert torch.allclose(total, torch.ones_like(total))


class Counting(TorchBackend):
    """A real torch backend that records the batch of every call."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.batches: list[int] = []

    def __call__(self, x):
        self.batches.append(int(x.shape[0]))
        return super().__call__(x)


@pytest.fixture(scope="module")
def compact(spandrel_files):
    """Real-ESRGAN compact x2 with four 3x3 convolutions: receptive-field radius 4 input pixels."""
    from stylize_video.train.checkpoint import load_model

    return load_model(spandrel_files["compact"])[0]


def test_tiled_equals_untiled_where_overlap_covers_receptive_field(compact):
    x = torch.rand(2, 3, 70, 90) * 255.0
    untiled = TorchBackend(compact, "cpu", "fp32")(x)
    inner = Counting(compact, "cpu", "fp32")
    tiled = TiledBackend(inner, TileOptions(size=40, overlap=16, batch=4))(x)  # overlap / 4 = 4 = radius
    assert tiled.shape == untiled.shape == (2, 3, 140, 180)
    assert _psnr(tiled, untiled) >= 45.0 and float((tiled - untiled).abs().max()) < 1e-2
    # 3 x 4 tiles per frame, 2 frames -> 24 tiles in calls of at most 4
    assert inner.batches == [4] * 6
    # The claim is tight: with overlap / 4 = 1 < 4 the seams show (differences, though blended).
    coarse = TiledBackend(TorchBackend(compact, "cpu", "fp32"), TileOptions(size=32, overlap=4))(x)
    assert float((coarse - untiled).abs().max()) > 1.0


def test_tile_smaller_than_model_minimum(spandrel_files):
    with pytest.raises(StylizeError, match=r"--tile 8 is smaller than this model's minimum input side of 16"):
        load_backend(spandrel_files["swinir"], device="cpu", precision="fp32", tile=TileOptions(8, 2))


def test_tile_options_checked():
    for kw, msg in (({"size": 0}, "--tile must be >= 1"), ({"size": 64, "overlap": 32}, "less than half"),
                    ({"size": 64, "overlap": -1}, "--tile-overlap must be >= 0")):
        with pytest.raises(StylizeError, match=msg):
            TileOptions(**kw)


def test_default_overlap_fits_small_tiles(spandrel_files, tmp_path, capsys):
    # --tile 32 alone: the default overlap (32 px) is cut to a quarter of the tile; only a given one is refused.
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    assert TileOptions(32).overlap is None and TileOptions(32, 15).overlap == 15
    src = make_test_clip(tmp_path / "in.mp4", width=64, height=48, frames=2, audio=False)
    args = [str(src), str(tmp_path / "out.mp4"), "--checkpoint", str(spandrel_files["compact"]), "--device", "cpu",
            "--tile", "32"]
    assert main(args) == 0
    assert "tiles 32 px, overlap 8 px, 4 per call" in capsys.readouterr().err
    assert main([*args, "--tile-overlap", "16", "--overwrite"]) == 1
    assert capsys.readouterr().err.strip() == ("stylize-video: error: --tile-overlap 16 must be less than half of "
                                               "--tile 32")


@pytest.fixture(scope="module")
def fixed32(compact, tmp_path_factory):
    """``compact`` exported for 32x32 only (no dynamic axes; a fixed-size engine's situation)."""
    import warnings

    path = tmp_path_factory.mktemp("fixed") / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(compact, (torch.rand(1, 3, 32, 32) * 255,), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"])
    return path


def test_fixed_size_onnx_pads_smaller_frames_and_tiles_larger_ones(compact, fixed32):
    from stylize_video.pipeline.sizing import pad_bottom_right
    from stylize_video.sizerules import SizeRules

    ref = TorchBackend(compact, "cpu", "fp32")
    small, large = torch.rand(2, 3, 20, 27) * 255.0, torch.rand(1, 3, 50, 70) * 255.0
    with load_backend(fixed32, device="cpu", precision="fp32") as plain:
        assert plain.size_rules == SizeRules(fixed=(32, 32)) and plain.size_rules.describe() == "fixed 32x32"
        # a frame up to 32x32 is padded to it and the output cropped back: the same pixels as torch on that input
        want = ref(pad_bottom_right(small, 32, 32))[..., :40, :54]
        assert float((plain(small) - want).abs().max()) < 1e-2
        with pytest.raises(StylizeError) as exc:  # one larger needs tiles, refused before any work
            plain.check_input(tuple(large.shape))
        assert str(exc.value) == "70x50 frames are larger than this model's fixed input size 32x32: run it in tiles " \
                                 "with --tile 32"
    with load_backend(fixed32, device="cpu", precision="fp32", tile=TileOptions(32, 12, batch=1)) as tiled:
        tiled.check_input(tuple(large.shape))
        assert _psnr(tiled(large), ref(large)) >= 45.0
        assert float((tiled(small) - want).abs().max()) < 1e-2  # a frame smaller than the tile: one padded tile
    with pytest.raises(StylizeError) as exc:
        load_backend(fixed32, device="cpu", precision="fp32", tile=TileOptions(16))
    assert str(exc.value) == "--tile 16 does not fit this model's fixed input size 32x32: use --tile 32"


def test_cli_tile_below_minimum_fails_before_decoding(spandrel_files, tmp_path, capsys):
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    src = make_test_clip(tmp_path / "in.mp4", width=64, height=48, frames=2, audio=False)
    out = tmp_path / "out.mp4"
    assert main([str(src), str(out), "--checkpoint", str(spandrel_files["swinir"]), "--tile", "8",
                 "--tile-overlap", "2", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("stylize-video: error: --tile 8 is smaller than this model's minimum input side of 16")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


def test_stylizer_tiles(spandrel_files):
    import numpy as np
    from stylize_video.pipeline.stylizer import Stylizer

    frame = np.random.default_rng(1).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    with Stylizer.load(spandrel_files["compact"], device="cpu") as whole, \
            Stylizer.load(spandrel_files["compact"], device="cpu", tile=34, tile_overlap=16, tile_batch=2) as tiled:
        assert tiled.backend.options == TileOptions(34, 16, 2)
        assert np.abs(tiled(frame).astype(int) - whole(frame).astype(int)).max() <= 1
