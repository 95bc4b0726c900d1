"""Fused CPU kernels for Y'CbCr planes <-> RGB float, one pass each way, compiled by Numba (LLVM).

The reference functions in ``stylize_video.pipeline.colour`` take ~20 full-frame tensor passes per
direction (29 + 19 ms for a 720p frame on one core); these kernels read each input sample once and
write each output sample once (~1 ms each way), which is what lets the frame path keep up with a
plain decode -> encode on a small CPU (issue 12). They implement exactly the reference's maths:

* in: RGB = ky * Y + A @ (Cb, Cr) + bias per channel (coefficients from ``colour.rgb_to_yuv_matrix``
  and the stream's levels, see ``stylize_video.pipeline.colour_fused``), chroma linearly upsampled
  with the reference's sitings. The matrix is applied at chroma resolution before upsampling
  (both are linear, so the result is the same up to float rounding: < 1e-3 of a code value).
* out: RGB clamped to 0..255, Y from it per pixel, Cb/Cr from the [1/4, 1/2, 1/4] (co-sited) or
  [1/2, 1/2] (centred) decimation of the clamped RGB (mirror / edge extension as the reference),
  rounded half-to-even and clamped to the code range (``colour.quantise``).

``siting`` codes per axis: 0 = not subsampled, 1 = co-sited, 2 = centred. Arrays may be strided
(semi-planar NV12 / P010 chroma is passed as ``uv[:, 0::2]`` / ``uv[:, 1::2]``). The kernels release
the GIL, so decode and encode threads run meanwhile. No ``fastmath``: NaN must stay NaN (the
out kernel counts non-finite samples for the model-output check).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NOT_SUBSAMPLED, COSITED, CENTRED = 0, 1, 2


@njit(cache=True, nogil=True, boundscheck=False)
def _chroma_row_in(u, v, r, sy, siting_y, a, bias, d):
    """Chroma contribution (3, Wc) of output row ``r`` into ``d[:, 1:Wc+1]``, ends replicated in d[:, 0] / d[:, Wc+1]."""
    hc, wc = u.shape
    if sy == 0:
        i, i2, w = r, r, 0.0
    else:
        i = r >> 1
        if siting_y == CENTRED:
            i2 = i - 1 if (r & 1) == 0 else i + 1
            w = 0.25
        else:  # co-sited: even rows on a chroma row, odd rows halfway to the next
            i2 = i + 1
            w = 0.0 if (r & 1) == 0 else 0.5
        i2 = min(max(i2, 0), hc - 1)
    w = np.float32(w)
    for j in range(wc):
        u0, v0 = np.float32(u[i, j]), np.float32(v[i, j])  # unsigned differences would wrap
        uu = u0 + w * (np.float32(u[i2, j]) - u0)
        vv = v0 + w * (np.float32(v[i2, j]) - v0)
        for c in range(3):
            d[c, j + 1] = a[c, 0] * uu + a[c, 1] * vv + bias[c]
    for c in range(3):
        d[c, 0] = d[c, 1]
        d[c, wc + 1] = d[c, wc]


@njit(cache=True, nogil=True, boundscheck=False)
def yuv_to_rgb_planes(y, u, v, out, ky, a, bias, sx, sy, siting_x, siting_y):
    """Planes -> RGB float32 0..255 (not clamped), one pass.

    y (H, W), u / v (Hc, Wc) unsigned ints (any strides); out (3, H, W) float32;
    ky (3,), a (3, 2), bias (3,) float32 per-channel coefficients in code units of the arrays' values.
    """
    h, w = y.shape
    wc = u.shape[1]
    d = np.empty((3, wc + 2), np.float32)
    # horizontal phase weights towards the previous (even outputs) and next (odd outputs) chroma sample
    we = np.float32(0.25 if siting_x == CENTRED else 0.0)
    wo = np.float32(0.25 if siting_x == CENTRED else 0.5)
    for r in range(h):
        _chroma_row_in(u, v, r, sy, siting_y, a, bias, d)
        for c in range(3):
            k = ky[c]
            if sx == 0:
                for x in range(w):
                    out[c, r, x] = k * y[r, x] + d[c, x + 1]
                continue
            for j in range(w // 2):
                m = d[c, j + 1]
                out[c, r, 2 * j] = k * y[r, 2 * j] + m + we * (d[c, j] - m)
                out[c, r, 2 * j + 1] = k * y[r, 2 * j + 1] + m + wo * (d[c, j + 2] - m)
            if w & 1:
                j = w // 2
                m = d[c, j + 1]
                out[c, r, w - 1] = k * y[r, w - 1] + m + we * (d[c, j] - m)


@njit(cache=True, nogil=True, inline="always")
def _clamp255(x):
    return min(max(x, np.float32(0.0)), np.float32(255.0))


@njit(cache=True, nogil=True, inline="always")
def _quantise(x, peak):
    return min(max(np.rint(x), np.float32(0.0)), peak)


@njit(cache=True, nogil=True, boundscheck=False)
def _decimate(src, dst, n, sub, siting):
    """1-D /2 decimation of ``src[:n]`` into ``dst`` (reference filters and edges); sub=0 copies."""
    if sub == 0:
        for i in range(n):
            dst[i] = src[i]
        return
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    m = (n + 1) // 2
    if siting == CENTRED:
        for i in range(n // 2):
            dst[i] = half * (src[2 * i] + src[2 * i + 1])
    else:
        # i = 0 mirrors: the sample left of 0 is sample 1
        dst[0] = half * src[0] + quarter * (src[min(1, n - 1)] + src[min(1, n - 1)])
        for i in range(1, n // 2):
            dst[i] = quarter * src[2 * i - 1] + half * src[2 * i] + quarter * src[2 * i + 1]
    if n & 1:  # odd length: the last input sample is repeated
        i = m - 1
        if siting == CENTRED:
            dst[i] = src[n - 1]
        elif i > 0:
            dst[i] = quarter * src[n - 2] + half * src[n - 1] + quarter * src[n - 1]


@njit(cache=True, nogil=True, boundscheck=False)
def rgb_to_yuv_planes(rgb, y, u, v, wy, wc, offsets, peak, scale, sx, sy, siting_x, siting_y):
    """RGB float 0..255 (clamped here) -> quantised planes, one pass; returns the count of non-finite inputs.

    rgb (3, H, W) float32; y (H, W), u / v (Hc, Wc) unsigned ints (any strides), written in place.
    wy (3,), wc (2, 3): code units per RGB unit; offsets (3,): luma offset, chroma centres; peak: the
    largest code value; scale: 1, or 64 for MSB-aligned P010 samples (all float32). Where the count
    is not 0 the planes hold garbage: the caller stops before such a frame is encoded.
    """
    _, h, w = rgb.shape
    hc, wcc = u.shape
    bad = 0
    wr, wg, wb, off = wy[0], wy[1], wy[2], offsets[0]
    for r in range(h):
        for x in range(w):
            sr, sg, sb = rgb[0, r, x], rgb[1, r, x], rgb[2, r, x]
            # x - x is NaN exactly for NaN and +-Inf: one compare counts both, and vectorises
            bad += (sr - sr != 0) + (sg - sg != 0) + (sb - sb != 0)
            acc = off + wr * _clamp255(sr) + wg * _clamp255(sg) + wb * _clamp255(sb)
            y[r, x] = _quantise(acc, peak) * scale
    rows = np.empty((3, hc, w), np.float32)  # vertically decimated, clamped RGB
    # vertical: filter rows into ``rows`` (whole rows at a time: contiguous, vectorised)
    for i in range(hc):
        if sy == 0:
            ra, rb, rc, va, vb, vc = i, i, i, np.float32(1.0), np.float32(0.0), np.float32(0.0)
        elif siting_y == CENTRED:
            ra, rb, rc = 2 * i, min(2 * i + 1, h - 1), 0
            va, vb, vc = np.float32(0.5), np.float32(0.5), np.float32(0.0)
        else:
            ra = 2 * i - 1 if i > 0 else min(1, h - 1)
            rb, rc = 2 * i, min(2 * i + 1, h - 1)
            va, vb, vc = np.float32(0.25), np.float32(0.5), np.float32(0.25)
        for c in range(3):
            if vc == 0.0:  # two taps (centred, or not subsampled with vb = 0)
                for x in range(w):
                    rows[c, i, x] = va * _clamp255(rgb[c, ra, x]) + vb * _clamp255(rgb[c, rb, x])
                continue
            for x in range(w):
                rows[c, i, x] = (va * _clamp255(rgb[c, ra, x]) + vb * _clamp255(rgb[c, rb, x])
                                 + vc * _clamp255(rgb[c, rc, x]))
    dec = np.empty((3, wcc), np.float32)
    c00, c01, c02, c10, c11, c12 = wc[0, 0], wc[0, 1], wc[0, 2], wc[1, 0], wc[1, 1], wc[1, 2]
    for i in range(hc):
        for c in range(3):
            _decimate(rows[c, i], dec[c], w, sx, siting_x)
        for j in range(wcc):
            cb = offsets[1] + c00 * dec[0, j] + c01 * dec[1, j] + c02 * dec[2, j]
            cr = offsets[2] + c10 * dec[0, j] + c11 * dec[1, j] + c12 * dec[2, j]
            u[i, j] = _quantise(cb, peak) * scale
            v[i, j] = _quantise(cr, peak) * scale
    return bad
