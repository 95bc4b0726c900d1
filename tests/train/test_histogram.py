"""``stylize_video.train.histogram.match_histogram``: the documented guarantees, a sort-based reference, shapes, errors.

skimage is not a dependency; the reference below is its algorithm on unique values (np.interp of
mid-rank quantiles on the sorted reference), written here in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stylize_video.train.histogram import DEFAULT_BINS, HistogramMatch, match_histogram


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quantile_reference(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact CDF matching per (image, channel) row: each distinct x value -> ref quantile at its mid-rank."""
    out = np.empty(x.shape, np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            _, inverse, counts = np.unique(x[n, c].ravel(), return_inverse=True, return_counts=True)
            q = (np.cumsum(counts) - counts / 2) / x[n, c].size
            r = np.sort(ref[n, c].ravel().astype(np.float64))
            out[n, c] = np.interp(q, (np.arange(r.size) + 0.5) / r.size, r)[inverse].reshape(x.shape[2:])
    return out


def edges_of(x: torch.Tensor, ref: torch.Tensor, n: int, c: int, bins: int) -> np.ndarray:
    lo = min(float(x[n, c].min()), float(ref[n, c].min()))
    hi = max(float(x[n, c].max()), float(ref[n, c].max()))
    return lo + (hi - lo) / bins * np.arange(bins + 1)


def cdf_gap(out: torch.Tensor, ref: torch.Tensor, edges: np.ndarray) -> float:
    """max over bin edges of |F_out(e) - F_ref(e)|, F(e) = fraction of values < e. Inputs: one channel each.

    The top edge is left out: the row maximum belongs to the last bin, so F is 1 there by definition.
    """
    o, r = np.sort(out.double().numpy().ravel()), np.sort(ref.double().numpy().ravel())
    edges = edges[:-1]
    return float(np.abs(np.searchsorted(o, edges) / o.size - np.searchsorted(r, edges) / r.size).max())


def largest_bin_fraction(x: torch.Tensor, edges: np.ndarray) -> float:
    counts, _ = np.histogram(x.double().numpy().ravel(), bins=edges)
    return float(counts.max() / x.numel())


def image_like(seed: int, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) 8-bit-valued image: smooth colour blobs + edges + texture, like a photo's statistics."""
    g = _gen(seed)
    h, w = size
    low = F.interpolate(torch.rand(1, 3, 6, 8, generator=g) * 255, size=size, mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    step = ((xx + 2 * yy) % 37 < 12).float() * torch.tensor([60.0, -40.0, 25.0]).view(1, 3, 1, 1)
    tex = torch.randn(1, 3, h, w, generator=g) * 6
    return (low + step + tex).clamp(0, 255).round()


# --- guarantees -------------------------------------------------------------------------------------------------

def test_identity_for_nearest_upscale_and_pixel_shuffle() -> None:
    ref = torch.rand(2, 3, 20, 26, generator=_gen(1)) * 200 + 20
    up = F.interpolate(ref, scale_factor=4, mode="nearest")  # same distribution, 16x the pixels
    torch.testing.assert_close(match_histogram(up, ref), up, rtol=0, atol=1e-4)
    shuffled = ref.flatten(2)[..., torch.randperm(20 * 26, generator=_gen(2))].reshape(ref.shape)
    torch.testing.assert_close(match_histogram(shuffled, ref, bins=64), shuffled, rtol=0, atol=1e-4)


@pytest.mark.parametrize("bins", [64, 256, DEFAULT_BINS])
def test_cdf_within_one_source_bin_on_random_data(bins: int) -> None:
    x = torch.randn(2, 3, 64, 80, generator=_gen(3)) * 25 + 100  # gaussian, 4x the pixels
    ref = torch.rand(2, 3, 32, 40, generator=_gen(4)) ** 2 * 255  # skewed, different size
    out = match_histogram(x, ref, bins)
    for n in range(2):
        for c in range(3):
            edges = edges_of(x, ref, n, c, bins)
            bound = largest_bin_fraction(x[n, c], edges)
            assert cdf_gap(out[n, c], ref[n, c], edges) <= bound + 1e-9
            assert cdf_gap(x[n, c], ref[n, c], edges) > 0.3  # the input really was far from ref


def test_cdf_within_one_source_bin_on_image_like_data() -> None:
    hr = image_like(5, (96, 128))
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 255).round()  # 8-bit ref
    sr = F.interpolate(lr, scale_factor=4, mode="bilinear") * 0.7 + torch.tensor([30.0, -10.0, 5.0]).view(1, 3, 1, 1)
    bins = 256
    out = match_histogram(sr, lr, bins)
    for c in range(3):
        edges = edges_of(sr, lr, 0, c, bins)
        assert cdf_gap(out[0, c], lr[0, c], edges) <= largest_bin_fraction(sr[0, c], edges) + 1e-9
    # the colour cast and the contrast loss are undone: means and spreads come back to the LR's
    torch.testing.assert_close(out.mean((2, 3)), lr.mean((2, 3)), rtol=0, atol=0.5)
    torch.testing.assert_close(out.std((2, 3)), lr.std((2, 3)), rtol=0.02, atol=0)
    assert (sr.mean((2, 3)) - lr.mean((2, 3))).abs().max() > 5


def test_agrees_with_sort_based_reference() -> None:
    x = torch.randn(1, 3, 160, 200, generator=_gen(6)) * 30 + 128
    ref = torch.rand(1, 3, 80, 100, generator=_gen(7)) ** 2 * 255
    bins = 256
    out = match_histogram(x, ref, bins).double().numpy()
    err = np.abs(out - quantile_reference(x.numpy(), ref.numpy()))
    w = max(float(x.max()), float(ref.max())) - min(float(x.min()), float(ref.min()))
    w /= bins
    # measured here: mean 0.10 w, max 0.75 w; the reference interpolates between samples, we within bins
    assert err.mean() < 0.25 * w and err.max() < 1.5 * w


def test_order_preserving_and_ties() -> None:
    x = (torch.randn(2, 3, 30, 40, generator=_gen(8)) * 40 + 120).round()  # integer levels: many ties
    ref = torch.rand(2, 3, 15, 20, generator=_gen(9)) * 255
    out = match_histogram(x, ref, bins=128)
    xs, os_ = x.flatten(2), out.flatten(2)
    order = xs.argsort(-1)
    sorted_out = os_.gather(-1, order)
    assert bool((sorted_out.diff(dim=-1) >= 0).all())
    for value in (100.0, 120.0, 140.0):  # equal inputs -> equal outputs
        hit = xs[0, 1] == value
        assert hit.sum() > 1 and os_[0, 1][hit].unique().numel() == 1


def test_output_within_reference_range_plus_a_bin() -> None:
    x = torch.rand(1, 3, 40, 40, generator=_gen(10)) * 400 - 80  # overshoots like an SR output
    ref = torch.rand(1, 3, 10, 10, generator=_gen(11)) * 100 + 50
    bins = 32
    out = match_histogram(x, ref, bins)
    w = (x.amax((2, 3)).clamp(min=ref.amax((2, 3))) - x.amin((2, 3)).clamp(max=ref.amin((2, 3)))) / bins
    assert bool((out.amin((2, 3)) >= ref.amin((2, 3)) - w - 1e-4).all())
    assert bool((out.amax((2, 3)) <= ref.amax((2, 3)) + w + 1e-4).all())


def test_constant_images() -> None:
    same = torch.full((1, 3, 8, 8), 77.0)
    torch.testing.assert_close(match_histogram(same, torch.full((1, 3, 2, 2), 77.0)), same)
    x = torch.rand(1, 3, 16, 16, generator=_gen(12)) * 255
    out = match_histogram(x, torch.full((1, 3, 4, 4), 200.0), bins=DEFAULT_BINS)
    w = (x.amax((2, 3)).clamp(min=200) - x.amin((2, 3))) / DEFAULT_BINS
    assert bool(((out - 200).abs() <= w[..., None, None] + 1e-4).all())


# --- shapes, dtypes, batching, determinism ----------------------------------------------------------------------

def test_batch_rows_are_independent_and_shapes_kept() -> None:
    x = torch.rand(3, 3, 24, 36, generator=_gen(13)) * 255
    ref = torch.rand(3, 3, 6, 9, generator=_gen(14)) * 128
    out = match_histogram(x, ref)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    for i in range(3):
        torch.testing.assert_close(out[i:i + 1], match_histogram(x[i:i + 1], ref[i:i + 1]))
    swapped = match_histogram(x, ref[:, [2, 0, 1]])  # channel c follows ref channel c only
    torch.testing.assert_close(swapped[:, 1:2], match_histogram(x[:, 1:2], ref[:, 0:1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_kept(dtype: torch.dtype) -> None:
    x = (torch.rand(1, 3, 16, 20, generator=_gen(15)) * 255).to(dtype)
    ref = (torch.rand(1, 3, 4, 5, generator=_gen(16)) * 255).to(torch.uint8)  # any real ref dtype
    out = match_histogram(x, ref, bins=64)
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out.float()).all()


def test_deterministic_no_grad_and_module() -> None:
    x = torch.rand(2, 3, 32, 32, generator=_gen(17)) * 255
    ref = torch.rand(2, 3, 8, 8, generator=_gen(18)) * 255
    with torch.no_grad():
        a = match_histogram(x, ref)
        b = HistogramMatch()(x, ref)
    assert torch.equal(a, b) and torch.equal(a, match_histogram(x.clone(), ref.clone()))
    assert "bins=1024" in repr(HistogramMatch())
    y = x.clone().requires_grad_(True)  # also runs with autograd on (differentiable inside bins)
    match_histogram(y, ref).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this PyTorch sees none)")
def test_cuda_has_no_host_sync_and_matches_cpu() -> None:
    x = torch.randn(1, 3, 256, 384, generator=_gen(19)) * 40 + 120
    ref = torch.rand(1, 3, 64, 96, generator=_gen(20)) * 255
    xc, rc = x.cuda(), ref.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device->host synchronisation raises
    try:
        a = match_histogram(xc, rc)
        b = match_histogram(xc, rc)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert a.device == xc.device and torch.equal(a, b)
    torch.testing.assert_close(a.cpu(), match_histogram(x, ref), rtol=0, atol=1e-3)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # scatter_add_ has a deterministic CUDA path: no error
    try:
        assert torch.equal(match_histogram(xc, rc), a)
    finally:
        torch.use_deterministic_algorithms(before)


# --- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "ref", "bins", "message"), [
    (torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), 16, "channel mismatch"),
    (torch.zeros(2, 3, 4, 4), torch.zeros(1, 3, 4, 4), 16, "batch mismatch"),
    (torch.zeros(3, 4, 4), torch.zeros(3, 4, 4), 16, r"expects \(N, C, H, W\)"),
    (torch.zeros(1, 3, 0, 4), torch.zeros(1, 3, 4, 4), 16, "non-empty"),
    (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4), 16, "floating-point"),
    (torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), 1, "bins must be"),
    (torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), 16.0, "bins must be"),
])
def test_errors(x, ref, bins, message) -> None:
    with pytest.raises(ValueError, match=message):
        match_histogram(x, ref, bins)
