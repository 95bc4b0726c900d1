"""stylize_video.pipeline.colour / colorinfo: our matrices against the standards and against swscale; guessing rules."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from stylize_video.pipeline.colorinfo import colour_info
from stylize_video.pipeline.colour import KR_KB, downsample_chroma, rgb_to_yuv, upsample_chroma, yuv_to_rgb


@pytest.mark.parametrize("matrix", sorted(KR_KB))
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("bits", [8, 10])
def test_rgb_yuv_round_trip_exact(matrix, full, bits):
    rgb = torch.rand(2, 3, 7, 9, dtype=torch.float64) * 255
    y, u, v = rgb_to_yuv(rgb, matrix=matrix, full_range=full, bit_depth=bits)
    assert y.shape == (2, 7, 9)
    torch.testing.assert_close(yuv_to_rgb(y, u, v, matrix=matrix, full_range=full, bit_depth=bits), rgb)


def test_reference_levels():
    white = torch.full((3, 1, 1), 255.0)
    y, u, v = rgb_to_yuv(white, matrix="bt709", full_range=False)
    assert (y.item(), u.item(), v.item()) == pytest.approx((235, 128, 128))
    y, _, _ = rgb_to_yuv(white, matrix="bt601", full_range=False, bit_depth=10)
    assert y.item() == pytest.approx(940)
    red = torch.tensor([255.0, 0, 0]).view(3, 1, 1)
    assert rgb_to_yuv(red, matrix="bt601", full_range=True)[0].item() == pytest.approx(0.299 * 255)


@pytest.mark.parametrize(("matrix", "sws"), [("bt601", "smpte170m"), ("bt709", "itu709")])
@pytest.mark.parametrize(("full", "sws_range"), [(False, "MPEG"), (True, "JPEG")])
def test_matches_swscale_with_explicit_coefficients(matrix, sws, full, sws_range):
    """4:4:4 so no chroma filter differs: our YUV->RGB equals swscale's to rounding."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(20, 235, (16, 16, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    interp = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
    yuv = frame.reformat(format="yuv444p", dst_colorspace=sws, dst_color_range=sws_range, interpolation=interp)
    planes = [torch.from_numpy(np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:16, :16].astype(np.float32))
              for p in yuv.planes]
    ours = yuv_to_rgb(*planes, matrix=matrix, full_range=full).round().clamp(0, 255).permute(1, 2, 0).numpy()
    theirs = yuv.reformat(format="rgb24", src_colorspace=sws, src_color_range=sws_range,
                          interpolation=interp).to_ndarray()
    assert np.abs(ours - theirs.astype(np.float32)).max() <= 2
    assert np.abs(ours - rgb.astype(np.float32)).max() <= 3  # and both are the original RGB


@pytest.mark.parametrize(("h", "w"), [(48, 64), (47, 63), (5, 5)])
@pytest.mark.parametrize("siting", ["left", "center", "topleft"])
def test_chroma_resampling_shapes_and_flat_fields(h, w, siting):
    c = torch.full((2, (h + 1) // 2, (w + 1) // 2), 77.0)
    up = upsample_chroma(c, h, w, 1, 1, siting)
    assert up.shape == (2, h, w) and torch.all(up == 77)
    down = downsample_chroma(up, 1, 1, siting)
    assert down.shape == c.shape and torch.allclose(down, c)
    assert upsample_chroma(c[:, :1], h, w, 0, 0).shape == (2, 1, (w + 1) // 2)  # 4:4:4 is untouched


def test_unsupported_subsampling():
    with pytest.raises(ValueError, match="not supported"):
        downsample_chroma(torch.zeros(4, 8), 2, 0)


@pytest.mark.parametrize(("space", "height", "matrix", "guessed"), [
    (2, 480, "bt601", True), (2, 719, "bt601", True), (2, 720, "bt709", True), (2, 2160, "bt709", True),
    (1, 480, "bt709", False), (6, 1080, "bt601", False), (5, 576, "bt601", False), (9, 2160, "bt2020", False),
])
def test_matrix_guessing(space, height, matrix, guessed):
    info = colour_info(space, 1, 2, 2, height=height, pix_fmt="yuv420p")
    assert (info.matrix, info.matrix_guessed) == (matrix, guessed)
    assert info.colorspace != 2  # the output is always tagged with what was used


def test_range_from_tags_and_yuvj():
    assert colour_info(1, 2, 1, 1, height=480, pix_fmt="yuv420p").full_range
    assert not colour_info(1, 1, 1, 1, height=480, pix_fmt="yuvj420p").full_range
    j = colour_info(1, 0, 1, 1, height=480, pix_fmt="yuvj420p")
    assert j.full_range and not j.range_guessed
    g = colour_info(1, 0, 1, 1, height=480, pix_fmt="yuv420p")
    assert not g.full_range and g.range_guessed
