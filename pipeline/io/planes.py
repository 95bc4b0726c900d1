"""Raw Y'CbCr plane layouts and the copies between ``av.VideoFrame`` and one packed host buffer.

A frame travels between threads (and to the GPU) as ONE flat uint8 tensor holding its planes back
to back without line padding: 1.5 bytes per pixel for 8-bit 4:2:0, half the bytes of RGB24, and
one host->device copy per frame. ``PlaneLayout`` says where each plane lives in that buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import av
import numpy as np
import torch

# pix_fmt -> (bit depth, log2 chroma x, log2 chroma y, semi-planar (interleaved CbCr), msb-aligned)
FORMATS: dict[str, tuple[int, int, int, bool, bool]] = {
    "yuv420p": (8, 1, 1, False, False), "yuvj420p": (8, 1, 1, False, False),
    "yuv422p": (8, 1, 0, False, False), "yuvj422p": (8, 1, 0, False, False),
    "yuv444p": (8, 0, 0, False, False), "yuvj444p": (8, 0, 0, False, False),
    "yuv440p": (8, 0, 1, False, False), "yuvj440p": (8, 0, 1, False, False),
    "yuv420p10le": (10, 1, 1, False, False), "yuv422p10le": (10, 1, 0, False, False),
    "yuv444p10le": (10, 0, 0, False, False), "yuv420p12le": (12, 1, 1, False, False),
    "yuv422p12le": (12, 1, 0, False, False), "yuv444p12le": (12, 0, 0, False, False),
    "nv12": (8, 1, 1, True, False), "p010le": (10, 1, 1, True, True),
}


def high_bit_depth(pix_fmt: str) -> bool:
    return FORMATS.get(pix_fmt, (8,))[0] > 8


@dataclass(frozen=True)
class PlaneLayout:
    """Geometry of one frame's planes in a packed buffer. Sizes in samples, offsets in bytes."""

    pix_fmt: str
    width: int
    height: int

    @cached_property
    def spec(self) -> tuple[int, int, int, bool, bool]:
        try:
            return FORMATS[self.pix_fmt]
        except KeyError:
            raise ValueError(f"pixel format {self.pix_fmt!r} has no packed layout") from None

    @property
    def bit_depth(self) -> int:
        return self.spec[0]

    @property
    def log2_chroma(self) -> tuple[int, int]:
        return self.spec[1], self.spec[2]

    @property
    def semi_planar(self) -> bool:
        return self.spec[3]

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.bit_depth == 8 else 2

    @property
    def chroma_size(self) -> tuple[int, int]:
        """(height, width) of one chroma plane."""
        sx, sy = self.log2_chroma
        return -(-self.height // (1 << sy)), -(-self.width // (1 << sx))

    @cached_property
    def plane_shapes(self) -> tuple[tuple[int, int], ...]:
        """(rows, samples per row) of each stored plane (NV12's CbCr plane is 2 samples per pixel)."""
        ch, cw = self.chroma_size
        if self.semi_planar:
            return (self.height, self.width), (ch, 2 * cw)
        return (self.height, self.width), (ch, cw), (ch, cw)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        out, pos = [], 0
        for h, w in self.plane_shapes:
            out.append(pos)
            pos += h * w * self.bytes_per_sample
        return (*out, pos)

    @property
    def nbytes(self) -> int:
        return self.offsets[-1]

    def numpy_views(self, buf: np.ndarray) -> list[np.ndarray]:
        """Per-plane (rows, samples) views into a flat uint8 numpy buffer of ``nbytes``."""
        dtype = np.uint8 if self.bytes_per_sample == 1 else np.uint16
        return [buf[a:b].view(dtype).reshape(shape)
                for (a, b), shape in zip(zip(self.offsets, self.offsets[1:]), self.plane_shapes)]

    def torch_planes(self, buf: torch.Tensor) -> list[torch.Tensor]:
        """Flat uint8 tensor (any device) -> per-plane int tensors: uint8, or int16 holding uint16 bits.

        Shapes: (nbytes,) -> [(H, W), (Hc, Wc), (Hc, Wc)] or, semi-planar, [(H, W), (Hc, 2 * Wc)].
        """
        dtype = torch.uint8 if self.bytes_per_sample == 1 else torch.int16
        return [buf[a:b].view(dtype).view(shape)
                for (a, b), shape in zip(zip(self.offsets, self.offsets[1:]), self.plane_shapes)]


def frame_to_buffer(frame: av.VideoFrame, layout: PlaneLayout, buf: np.ndarray) -> None:
    """Copy a software frame's planes (dropping line padding) into the packed buffer ``buf``."""
    dtype = np.uint8 if layout.bytes_per_sample == 1 else np.uint16
    for plane, view in zip(frame.planes, layout.numpy_views(buf)):
        rows, samples = view.shape
        src = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :samples * layout.bytes_per_sample]
        view[...] = src.view(dtype)


def buffer_to_frame(buf: np.ndarray, layout: PlaneLayout) -> av.VideoFrame:
    """New ``av.VideoFrame`` of ``layout`` holding the packed buffer's planes."""
    frame = av.VideoFrame(layout.width, layout.height, layout.pix_fmt)
    for plane, view in zip(frame.planes, layout.numpy_views(buf)):
        rows, samples = view.shape
        dst = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :samples * layout.bytes_per_sample]
        dst[...] = view.view(np.uint8).reshape(rows, -1)
    return frame
