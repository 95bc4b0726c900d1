"""Deinterlacing decoded frames with FFmpeg's bwdif / yadif through a PyAV filter graph.

An interlaced frame holds two fields (odd and even lines) captured 1/50 s or 1/60 s apart; anything
that moves shows "combing". A network trained on progressive images would stylize the comb teeth, so
interlaced frames are deinterlaced before the model, as ``ffmpeg -vf bwdif`` does:

- ``auto`` (default): frames the decoder flags interlaced go through bwdif (``deint=interlaced``);
  progressive frames pass untouched. The graph is built at the first interlaced frame, so progressive
  files never pay for it.
- ``bwdif`` / ``yadif``: every frame is deinterlaced (``deint=all``), for streams that are interlaced
  but not flagged so.
- ``off``: frames are processed as they are (combing stays).

Rate: ``frame`` (default) gives one frame per input frame, same timestamps (``mode=send_frame``);
``field`` gives one frame per field (``mode=send_field``): twice the rate, timestamps in a time base
twice as fine (the filter's output link: input time base / 2), the second field's frame halfway
between. bwdif and yadif hold one frame back to look ahead: ``flush()`` at the end of the input
returns it (without it the last frame is lost). Field parity comes from each frame's flags
(``parity=auto``). Output frames are progressive (their interlaced flag cleared by the filter).

Frames decoded by NVDEC and kept on the GPU are not deinterlaced here (the filter runs on CPU
frames); the source decodes interlaced input on the CPU instead (see ``FileSource``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

import av

MODES = ("auto", "off", "bwdif", "yadif")
RATES = ("frame", "field")


@dataclass(frozen=True)
class DeinterlaceOptions:
    """``mode``: one of ``MODES``; ``rate``: one of ``RATES``."""

    mode: str = "auto"
    rate: str = "frame"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"deinterlace mode must be one of {MODES}, got {self.mode!r}")
        if self.rate not in RATES:
            raise ValueError(f"deinterlace rate must be one of {RATES}, got {self.rate!r}")

    @property
    def filter(self) -> str | None:
        """FFmpeg filter name, or None for ``off``."""
        return None if self.mode == "off" else ("bwdif" if self.mode == "auto" else self.mode)

    @property
    def args(self) -> str:
        mode = "send_field" if self.rate == "field" else "send_frame"
        deint = "interlaced" if self.mode == "auto" else "all"
        return f"mode={mode}:parity=auto:deint={deint}"


class Deinterlacer:
    """Push decoded software frames in, get progressive frames out (0, 1 or 2 per push; the rest on flush).

    Frames keep their PTS (``rate="frame"``) or get field timestamps (``rate="field"``). A change of
    size or pixel format mid-stream flushes the graph and builds a new one. Frames stay ``av.VideoFrame``
    (planar YUV as decoded; bwdif/yadif take 8- to 16-bit YUV and grey formats).
    """

    def __init__(self, options: DeinterlaceOptions) -> None:
        self.options = options
        self.graph: av.filter.Graph | None = None
        self._key: tuple | None = None
        self.frames_in = 0  # frames that went through the filter
        self.used = False  # True once a frame was deinterlaced (auto: an interlaced frame was seen)

    def _wanted(self, frame: av.VideoFrame) -> bool:
        if self.options.filter is None:
            return False
        return self.graph is not None or self.options.mode != "auto" or bool(frame.interlaced_frame)

    def _build(self, frame: av.VideoFrame) -> None:
        g = av.filter.Graph()
        tb = frame.time_base
        src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                           time_base=tb if tb is not None else Fraction(1, av.time_base))
        chain = [src, g.add(self.options.filter, self.options.args),
                 # frames leave in the format they came in (a no-op where the filter takes it; NV12
                 # would otherwise come out as yuv420p from a scaler the graph inserts)
                 g.add("format", f"pix_fmts={frame.format.name}"), g.add("buffersink")]
        for a, b in pairwise(chain):
            a.link_to(b)
        g.configure()
        self.graph = g
        self._key = (frame.width, frame.height, frame.format.name, tb)

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """The frames ready after ``frame`` (possibly none: the filter looks one frame ahead)."""
        if not self._wanted(frame):
            return [frame]
        out: list[av.VideoFrame] = []
        key = (frame.width, frame.height, frame.format.name, frame.time_base)
        if self.graph is not None and key != self._key:
            out += self.flush()
        if self.graph is None:
            self._build(frame)
        self.used = True
        self.frames_in += 1
        self.graph.push(frame)
        return out + self._drain()

    def flush(self) -> list[av.VideoFrame]:
        """End of input: the frames the filter still holds. The graph is dropped (a later push builds one)."""
        if self.graph is None:
            return []
        self.graph.push(None)
        out = self._drain()
        self.graph, self._key = None, None
        return out

    def _drain(self) -> list[av.VideoFrame]:
        out = []
        while True:
            try:
                out.append(self.graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
