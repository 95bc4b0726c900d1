"""av.VideoFrame <-> RGB uint8 arrays with explicit colour matrices (never swscale's silent BT.601 default).

Decode: the frame's own matrix/range when tagged, else BT.709 for height >= 720 and BT.601 below, limited range
for YUV (full for ``yuvj*``). Encode: the same height rule, limited range, and the tags written on the frame so
players and OBS do not have to guess.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

# FFmpeg AVColorSpace values that swscale can convert, -> the reformatter's name.
_MATRIX_OF_TAG: dict[int, Colorspace] = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
                                         7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
# swscale matrix + the AVColorSpace / transfer / primaries tags written out (SMPTE 170M = BT.601 525-line).
_BT709 = {"colorspace": Colorspace.ITU709, "tag": 1, "trc": 1, "primaries": 1}
_BT601 = {"colorspace": Colorspace.ITU601, "tag": 6, "trc": 6, "primaries": 6}


def matrix_for_height(height: int) -> dict[str, Colorspace | int]:
    """HD convention: BT.709 from 720 lines up, BT.601 (SMPTE 170M) below."""
    return _BT709 if height >= 720 else _BT601


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> (H, W, 3) uint8 RGB, full range."""
    if frame.format.name in ("rgb24",):
        return frame.to_ndarray()
    src = _MATRIX_OF_TAG.get(int(frame.colorspace), matrix_for_height(frame.height)["colorspace"])
    rng = int(frame.color_range)
    if rng not in (ColorRange.MPEG, ColorRange.JPEG):
        rng = ColorRange.JPEG if frame.format.name.startswith("yuvj") else ColorRange.MPEG
    rgb = frame.reformat(format="rgb24", src_colorspace=src, dst_colorspace=src,
                         src_color_range=rng, dst_color_range=ColorRange.JPEG)
    return rgb.to_ndarray()


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str = "yuv420p") -> av.VideoFrame:
    """(H, W, 3) uint8 RGB -> a tagged, limited-range YUV frame ready for an encoder."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    tags = matrix_for_height(frame.height)
    frame.colorspace = tags["colorspace"]
    frame.color_range = ColorRange.JPEG
    out = frame.reformat(format=pix_fmt, src_colorspace=tags["colorspace"], dst_colorspace=tags["colorspace"],
                         src_color_range=ColorRange.JPEG, dst_color_range=ColorRange.MPEG,
                         dst_color_trc=tags["trc"], dst_color_primaries=tags["primaries"])
    out.colorspace = tags["tag"]
    return out
