"""Odd frame sizes in subsampled pixel formats: pad by repeating the last column / row.

4:2:0 stores one chroma sample per 2x2 pixels, so H.264, HEVC and VP9 encoders take 4:2:0 only at even
sizes (the bitstreams' cropping works in whole chroma samples, so 63x47 cannot even be signalled).
For an odd-sized output (an odd input, or a model that changes the size) there are three choices:
4:4:4 at the exact size (what we did before: browsers, phones and most hardware decoders refuse
H.264 4:4:4), cropping to even (loses a row/column of the picture) or padding to even. We pad: every
input pixel is kept, the added column/row repeats its neighbour (no black line at the edge; chroma at
the edge is the average of a pixel and its copy), the file plays everywhere, and a warning says the
output is one pixel larger. ``--pix-fmt yuv444p`` keeps the exact size instead.
"""

from __future__ import annotations

import av
import numpy as np
from stylize_video.pipeline.io.containers import subsampling
from stylize_video.pipeline.io.planes import PlaneLayout


def padded_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded up to what ``pix_fmt``'s chroma subsampling needs (64x48 for 63x47 4:2:0)."""
    sx, sy = subsampling(pix_fmt)
    mx, my = 1 << sx, 1 << sy
    return -(-width // mx) * mx, -(-height // my) * my


def pad_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """A ``width`` x ``height`` copy of ``frame`` (same format, a format of ``planes.FORMATS``), the last
    column / row (or CbCr pair, for NV12-like formats) repeated into the added ones. Timestamps and colour
    tags are carried over."""
    fmt = frame.format.name
    src_layout, dst_layout = PlaneLayout(fmt, frame.width, frame.height), PlaneLayout(fmt, width, height)
    bps = src_layout.bytes_per_sample
    dtype = np.uint8 if bps == 1 else np.uint16
    out = av.VideoFrame(width, height, fmt)
    shapes = zip(src_layout.plane_shapes, dst_layout.plane_shapes)
    for i, (sp, dp, ((sr, sc), (dr, dc))) in enumerate(zip(frame.planes, out.planes, shapes)):
        s = np.frombuffer(sp, np.uint8).reshape(-1, sp.line_size)[:sr, :sc * bps].view(dtype)
        d = np.frombuffer(dp, np.uint8).reshape(-1, dp.line_size)[:dr, :dc * bps].view(dtype)
        unit = 2 if src_layout.semi_planar and i == 1 else 1  # interleaved Cb, Cr: repeat the pair
        d[:sr, :sc] = s
        if dc > sc:
            d[:sr, sc:] = np.tile(s[:, -unit:], (1, (dc - sc) // unit))
        if dr > sr:
            d[sr:, :] = d[sr - 1:sr, :]
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    if frame.duration:
        out.duration = frame.duration
    out.colorspace, out.color_range = frame.colorspace, frame.color_range
    return out
