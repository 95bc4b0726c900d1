"""Interlaced output: an interlaced input that is not deinterlaced (``--deinterlace off``) keeps its field order.

The frames the model returns are woven fields (two pictures 1/50 s apart, line by line); flagged
progressive, a player shows them as one picture and the combing stays. ``ffmpeg`` keeps the input's
field order when it does not deinterlace; so do we:

- the output stream gets the input's ``AVFieldOrder`` (the muxer writes it: Matroska ``FieldOrder``, MOV
  ``fiel``), and
- each frame is flagged interlaced, top or bottom field first, by FFmpeg's ``setfield`` filter (PyAV 18
  cannot set frame flags), which encoders read: libx264 codes the frames as interlaced when the encoder
  has ``AV_CODEC_FLAG_INTERLACED_DCT`` (``ildct``) and takes the field order from each frame's flag
  (libavcodec/libx264.c), as do MPEG-2 and ProRes.

AVFieldOrder (libavcodec/defs.h): 0 unknown, 1 progressive, 2 TT, 3 BB, 4 TB, 5 BT (coded, displayed).
"""

from __future__ import annotations

from fractions import Fraction

import av

INTERLACED_ORDERS = (2, 3, 4, 5)
# encoders that code interlaced pictures when asked with AV_CODEC_FLAG_INTERLACED_DCT
_ILDCT_ENCODERS = ("libx264", "libx264rgb", "mpeg2video", "mpeg4", "h264_nvenc", "hevc_nvenc")


def top_first(field_order: int) -> bool:
    """True when the top field is displayed first (TT, BT)."""
    return field_order in (2, 5)


class FieldFlags:
    """Flags frames interlaced in ``field_order`` (one of ``INTERLACED_ORDERS``) for ``stream``'s encoder.

    ``setup()`` sets the stream's field order and interlaced coding before the encoder opens; ``__call__``
    returns a frame carrying the flags (same picture, PTS and time base).
    """

    def __init__(self, field_order: int) -> None:
        self.field_order = field_order
        self._graph: av.filter.Graph | None = None
        self._key: tuple | None = None

    def setup(self, cc: av.video.codeccontext.VideoCodecContext, codec: str) -> None:
        cc.field_order = self.field_order
        if codec in _ILDCT_ENCODERS:
            cc.flags |= av.codec.context.Flags.interlaced_dct

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        key = (frame.width, frame.height, frame.format.name, frame.time_base)
        if self._graph is None or key != self._key:
            self._graph, self._key = self._build(frame), key
        self._graph.push(frame)
        out = self._graph.pull()
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                               time_base=frame.time_base or Fraction(1, 90000))
        mode = graph.add("setfield", "tff" if top_first(self.field_order) else "bff")
        sink = graph.add("buffersink")
        src.link_to(mode)
        mode.link_to(sink)
        graph.configure()
        return graph
