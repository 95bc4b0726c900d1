"""stylize_video.pipeline.colour_fused: the frame path's fused conversions give the reference's values.

The reference is ``processor.planes_to_rgb`` / ``processor.rgb_to_packed`` (``pipeline.colour``, itself
checked against swscale with explicit coefficients in test_colour.py). Both fused paths are checked:
the Numba kernels (CPU) and the torch formulation that CUDA runs (compiled there; eager here, same ops).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.colour_fused import FusedConverter, numba_kernels
from stylize_video.pipeline.io.planes import PlaneLayout
from stylize_video.pipeline.processor import planes_to_rgb, rgb_to_packed

needs_numba = pytest.mark.skipif(numba_kernels() is None, reason="numba is not installed (CPU fused kernels)")

# (pix_fmt, width, height): every chroma layout, 8/10/12-bit, semi-planar, odd sizes where FFmpeg has them
LAYOUTS = [("yuv420p", 64, 48), ("yuv420p", 63, 47), ("yuv422p", 63, 48), ("yuv444p", 33, 17), ("yuv440p", 32, 47),
           ("yuv420p10le", 65, 37), ("yuv444p12le", 32, 24), ("nv12", 64, 48), ("p010le", 64, 48)]
SITINGS = ["left", "center", "topleft"]
COLOURS = [ColourInfo("bt709", False, 1, 1, 1), ColourInfo("bt601", True, 6, 6, 6), ColourInfo("bt2020", False, 9, 9, 16)]


def _random_packed(layout: PlaneLayout, seed: int) -> torch.Tensor:
    """A packed buffer of valid samples (P010: MSB-aligned, low 6 bits zero)."""
    rng = np.random.default_rng(seed)
    buf = np.zeros(layout.nbytes, np.uint8)
    for view in layout.numpy_views(buf):
        peak = (1 << layout.bit_depth) - 1
        vals = rng.integers(0, peak + 1, view.shape)
        if layout.spec[4]:
            vals <<= 16 - layout.bit_depth
        (view.view(np.uint16) if layout.bytes_per_sample == 2 else view)[...] = vals
    return torch.from_numpy(buf)


def _samples(packed: torch.Tensor, layout: PlaneLayout) -> np.ndarray:
    a = packed.numpy()
    return a.view(np.uint16).astype(np.int64) if layout.bytes_per_sample == 2 else a.astype(np.int64)


def _check_packed(got: torch.Tensor, want: torch.Tensor, layout: PlaneLayout) -> None:
    """Equal except rounding ties that float order tips (one code value, rarely)."""
    g, w = _samples(got, layout), _samples(want, layout)
    step = 1 << (16 - layout.bit_depth) if layout.spec[4] else 1
    diff = np.abs(g - w) // step
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


# every layout with the H.264 default siting; the other sitings on layouts that subsample both ways or vertically
CASES = [(*lay, "left") for lay in LAYOUTS] + [(*lay, s) for lay in LAYOUTS if lay[0] in ("yuv420p", "yuv440p", "nv12")
                                               for s in SITINGS[1:]]


@pytest.mark.parametrize(("pix_fmt", "w", "h", "siting"), CASES)
@pytest.mark.parametrize("path", [pytest.param("numba", marks=needs_numba), "torch"])
def test_fused_matches_reference(pix_fmt, w, h, siting, path):
    layout = PlaneLayout(pix_fmt, w, h)
    colour = COLOURS[(LAYOUTS.index((pix_fmt, w, h)) + SITINGS.index(siting)) % len(COLOURS)]  # all meet
    conv = FusedConverter(layout, layout, colour, colour, siting, torch.device("cpu"), compile=False)
    if path == "torch":
        conv._kernels = None  # the formulation CUDA runs, eagerly on the CPU
    planes = layout.torch_planes(_random_packed(layout, seed=w * h))
    rgb = conv.to_rgb(planes).clone()
    ref = planes_to_rgb(planes, layout, colour, siting)
    assert rgb.shape == ref.shape == (1, 3, h, w)
    torch.testing.assert_close(rgb, ref, atol=2e-3, rtol=0)
    # out of gamut and beyond 0..255 on purpose: the clamp is part of what is compared
    rgb = ref + 40.0 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    out = torch.zeros(layout.nbytes, dtype=torch.uint8)
    flag = conv.to_packed(rgb, out)
    assert int(flag) == 0
    _check_packed(out, rgb_to_packed(rgb, layout, colour, siting), layout)


@pytest.mark.parametrize("path", [pytest.param("numba", marks=needs_numba), "torch"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_model_output_is_flagged(path, bad):
    layout, colour = PlaneLayout("yuv420p", 32, 24), COLOURS[0]
    conv = FusedConverter(layout, layout, colour, colour, "left", torch.device("cpu"), compile=False)
    if path == "torch":
        conv._kernels = None
    rgb = torch.full((1, 3, 24, 32), 100.0)
    out = torch.empty(layout.nbytes, dtype=torch.uint8)
    assert int(conv.to_packed(rgb, out)) == 0
    rgb[0, 1, 5, 7] = bad
    assert int(conv.to_packed(rgb, out)) > 0


@needs_numba
def test_cpu_path_is_numba_and_reuses_its_buffer():
    layout, colour = PlaneLayout("yuv420p", 32, 24), COLOURS[0]
    conv = FusedConverter(layout, layout, colour, colour, "left", torch.device("cpu"))
    assert conv.path == "numba" and not conv.compiled
    planes = layout.torch_planes(_random_packed(layout, 3))
    assert conv.to_rgb(planes).data_ptr() == conv.to_rgb(planes).data_ptr()  # no per-frame allocation


def test_compile_failure_falls_back_to_the_same_values(monkeypatch):
    """A torch.compile that fails at the first call (no compiler, an inductor bug) must not end the run."""
    from stylize_video.pipeline import colour_fused

    def broken(fn):
        def call(*args):
            raise RuntimeError("inductor: no working C++ compiler")
        return call

    monkeypatch.setattr(colour_fused, "_compiled", broken)
    monkeypatch.setattr(colour_fused, "_WARNED", set())
    layout, colour = PlaneLayout("nv12", 32, 24), COLOURS[1]
    conv = FusedConverter(layout, layout, colour, colour, "left", torch.device("cpu"), compile=True)
    conv._kernels = None
    planes = layout.torch_planes(_random_packed(layout, 5))
    with pytest.warns(UserWarning, match="torch.compile of the colour conversion failed"):
        rgb = conv.to_rgb(planes)
    torch.testing.assert_close(rgb, planes_to_rgb(planes, layout, colour), atol=2e-3, rtol=0)
    assert conv.path == "torch" and not conv.compiled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled colour conversion)")
@pytest.mark.parametrize(("pix_fmt", "w", "h"), [("yuv420p", 64, 48), ("nv12", 64, 48), ("p010le", 64, 48),
                                                 ("yuv420p10le", 66, 38)])
def test_compiled_cuda_conversion_matches_reference(pix_fmt, w, h):
    layout, colour = PlaneLayout(pix_fmt, w, h), COLOURS[0]
    conv = FusedConverter(layout, layout, colour, colour, "left", torch.device("cuda"))
    assert conv.compiled and conv.path == "torch-compile"
    host = layout.torch_planes(_random_packed(layout, seed=7))
    ref = planes_to_rgb(host, layout, colour)
    rgb = conv.to_rgb([p.cuda() for p in host])
    torch.testing.assert_close(rgb.cpu(), ref, atol=2e-3, rtol=0)
    noisy = ref + 40.0 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    out = torch.empty(layout.nbytes, dtype=torch.uint8, device="cuda")
    flag = conv.to_packed(noisy.cuda(), out)
    assert int(flag) == 0 and conv.compiled  # compiled, not fallen back to eager
    _check_packed(out.cpu(), rgb_to_packed(noisy, layout, colour), layout)
