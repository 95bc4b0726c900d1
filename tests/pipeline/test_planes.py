"""pipeline.io.planes: packed host buffers <-> av.VideoFrame, for odd sizes and deep formats."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from pipeline.io.planes import PlaneLayout, buffer_to_frame, frame_to_buffer


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "nv12", "p010le"])
@pytest.mark.parametrize(("w", "h"), [(64, 48), (63, 47)])
def test_round_trip(pix_fmt, w, h):
    if pix_fmt in ("nv12", "p010le") and (w % 2 or h % 2):
        pytest.skip("semi-planar formats need even sizes in FFmpeg")
    layout = PlaneLayout(pix_fmt, w, h)
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, layout.nbytes, dtype=np.uint8)
    frame = buffer_to_frame(src, layout)
    assert (frame.width, frame.height, frame.format.name) == (w, h, pix_fmt)
    back = np.zeros_like(src)
    frame_to_buffer(frame, layout, back)
    np.testing.assert_array_equal(back, src)
    planes = layout.torch_planes(torch.from_numpy(back))
    assert [tuple(p.shape) for p in planes] == list(layout.plane_shapes)


def test_420_is_one_and_a_half_bytes_per_pixel():
    assert PlaneLayout("yuv420p", 64, 48).nbytes == 64 * 48 * 3 // 2
    assert PlaneLayout("yuv420p10le", 64, 48).nbytes == 64 * 48 * 3
    assert PlaneLayout("yuv420p", 63, 47).chroma_size == (24, 32)


def test_decoded_frame_copies_without_line_padding():
    frame = av.VideoFrame(63, 47, "yuv420p")
    assert frame.planes[0].line_size > 63  # FFmpeg pads lines; the packed buffer must not
    layout = PlaneLayout("yuv420p", 63, 47)
    buf = np.zeros(layout.nbytes, np.uint8)
    frame_to_buffer(frame, layout, buf)


def test_unknown_format():
    with pytest.raises(ValueError, match="no packed layout"):
        PlaneLayout("rgb24", 4, 4).nbytes  # noqa: B018
