"""A pixel format that changes mid-stream (joined recordings, a broadcast switching profiles: 4:2:0 to 4:4:4,
8 to 10 bit): later frames converted to the first frame's format, as ``ffmpeg`` does (its filter graph
is re-created with a scaler in front of the encoder).

The frame path is set up for the first frame's format (packed planes, the encoder's pixel format), so a
frame in another one is converted by swscale with its colour matrix and range stated on both sides (the
frame's own tags, else the same guesses as for the first frame: ``colour_info_of``), never swscale's
defaults. Said once. Frames still on the GPU (NVDEC) pass as they are.
"""

from __future__ import annotations

import warnings

import av
from stylize_video.pipeline.colorinfo import ColourInfo, colour_info_of


class FormatKeeper:
    """Keeps decoded frames in the pixel format of the first one (``name`` names the input in the warning)."""

    def __init__(self, name: str, stream_cc: object | None = None) -> None:
        self.name, self.stream_cc = name, stream_cc
        self.format: str | None = None
        self.colour: ColourInfo | None = None
        self.converted = 0

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame``, or a copy in the first frame's format (same size, PTS and time base)."""
        fmt = frame.format.name
        if fmt == "cuda":
            return frame
        if self.format is None:
            self.format, self.colour = fmt, colour_info_of(frame, self.stream_cc)
            return frame
        if fmt == self.format:
            return frame
        if not self.converted:
            warnings.warn(f"{self.name}: the pixel format changes mid-stream from {self.format} to {fmt}; later "
                          f"frames are converted to {self.format}", stacklevel=3)
        self.converted += 1
        src_space, src_range = colour_info_of(frame, self.stream_cc).sws
        dst_space, dst_range = self.colour.sws
        out = frame.reformat(format=self.format, src_colorspace=src_space, dst_colorspace=dst_space,
                             src_color_range=src_range, dst_color_range=dst_range)
        out.pts, out.time_base, out.duration = frame.pts, frame.time_base, frame.duration
        return out
