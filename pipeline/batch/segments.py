"""Cutting one input into keyframe-aligned segments of about ``--segment-seconds``.

The video stream's packets are read once (no decoding) to learn every frame's timestamp and where the
keyframes are. A keyframe at PTS ``K`` may start a segment when every packet before it in decode order
is presented before it (so no frame of an earlier GOP is shown after ``K``). Segment ``i`` holds the frames
with ``lo_i <= pts < hi_i``; the first has no ``lo`` and the last no ``hi``, so the ends of the input are
decoded exactly as one ``stylize-video`` run decodes them. Each later segment is decoded from a seek to the
keyframe at or before the DTS of its first keyframe (the index of MP4/MOV is by DTS, of Matroska by PTS:
the DTS target lands on that keyframe or an earlier one, never a later one) and keeps decoding until the
first frame at or past ``hi``; decoders output in presentation order, so the frames that open-GOP leading
pictures need from the previous GOP are decoded by the previous segment, which ends only after them.

Not cut (one segment, still processed by a worker and joined like the others): an input with a video packet
without PTS (raw elementary streams, some AVI); one whose frames are deinterlaced (bwdif/yadif look at the
neighbouring frames, which a segment's first and last frame would not have); one whose timestamps jump
(joined MPEG-TS recordings: ``FileSource`` shifts what follows a jump by an offset it learns from the start).
"""

from __future__ import annotations

import bisect
import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from stylize_video.pipeline.io.decode import demux_packets
from stylize_video.pipeline.io.discontinuity import Discontinuities
from stylize_video.pipeline.io.paths import ffmpeg_path
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions, SourceStats

# Why 30 s: a segment's fixed cost (open + seek, encoder start/close, hand-off: ~0.04 s measured; + one warm-up
# frame through the model) and its extra IDR frame stay small next to 720 frames of work (0.3-2 % at the 25-165
# frames/s per GPU worker estimated for an 8-GPU node), while a two-hour film still gives 240 segments: enough to
# keep 32 GPUs busy to the end, and a crash loses at most one segment per worker. See pipeline/batch/README.md.
DEFAULT_SEGMENT_SECONDS = 30.0


@dataclass(frozen=True)
class Segment:
    """Frames ``lo <= pts < hi`` (video stream time base; None: open end), decoded after seeking to ``seek``
    (None: from the start of the file); ``frames`` is how many frames the stream has in that range."""

    index: int
    lo: int | None
    hi: int | None
    seek: int | None
    frames: int

    def to_list(self) -> list:
        return [self.lo, self.hi, self.seek, self.frames]


@dataclass(frozen=True)
class InputPlan:
    """One input's video stream and its segments (what the manifest caches per input identity)."""

    stream_index: int
    time_base: Fraction
    rotation: int
    frames: int
    duration_s: float
    segments: list[Segment]

    def to_dict(self) -> dict:
        return {"stream_index": self.stream_index, "time_base": str(self.time_base), "rotation": self.rotation,
                "frames": self.frames, "duration_s": self.duration_s,
                "segments": [s.to_list() for s in self.segments]}

    @classmethod
    def from_dict(cls, d: dict) -> InputPlan:
        """The plan ``to_dict`` wrote; ValueError (or KeyError, TypeError) for anything ``plan_input`` never gives:
        a manifest edited or written by something else is probed again, never trusted."""
        segs = [Segment(i, *row) for i, row in enumerate(d["segments"])]
        plan = cls(d["stream_index"], Fraction(d["time_base"]), d["rotation"], d["frames"], d["duration_s"], segs)
        if not plan.consistent():
            raise ValueError("not a plan that plan_input makes")
        return plan

    def consistent(self) -> bool:
        """At least one segment; the first opens and the last closes the input; each begins (at a seek point) where
        the one before ends; ints throughout; the segments' frames add up to the input's."""
        segs = self.segments
        counts = [self.stream_index, self.frames, *(s.frames for s in segs)]
        stamps = [self.rotation, *(v for s in segs for v in (s.lo, s.hi, s.seek) if v is not None)]  # (may be < 0)
        if not segs or not all(type(v) is int and v >= 0 for v in counts) or not all(type(v) is int for v in stamps):
            return False
        if self.time_base <= 0 or type(self.duration_s) not in (int, float):
            return False
        ends = segs[0].lo is None and segs[0].seek is None and segs[-1].hi is None
        joined = all(a.hi is not None and a.hi == b.lo and b.seek is not None for a, b in itertools.pairwise(segs))
        return ends and joined and sum(s.frames for s in segs) == self.frames


@dataclass(frozen=True)
class _Scan:
    pts: list[int]  # every frame with a PTS that the decoder outputs, decode order
    cuts: list[tuple[int, int]]  # (pts, dts) of keyframes that may start a segment
    untimed: int  # packets without a PTS (then nothing is cut)
    jumps: int  # timestamp discontinuities (then nothing is cut)


def _scan(path: Path, index: int, passthrough: list[int]) -> _Scan:
    """Read the packets of video stream ``index`` (no decoding): timestamps and the keyframes one can cut at.

    The pass-through streams are read along where the format allows timestamp jumps, as ``FileSource`` reads
    them, so that jumps are found as it finds them."""
    pts: list[int] = []
    cuts: list[tuple[int, int]] = []
    untimed = 0
    shown = None  # latest PTS so far in decode order
    with av.open(ffmpeg_path(path), metadata_errors="replace") as c:
        jumps = Discontinuities(c, str(path))
        streams = [c.streams[index], *(c.streams[i] for i in passthrough)] if jumps.enabled else [c.streams[index]]
        # (a read error ends the input, as there)
        for p in jumps.shifted(demux_packets(c, streams, SourceStats(), str(path))):
            if p.stream.index != index:
                continue
            if p.pts is None:
                untimed += 1
                continue
            if p.is_discard:  # decoded for its references, never output (an MP4 edit list trims it)
                shown = p.pts if shown is None else max(shown, p.pts)
                continue
            if p.is_keyframe and pts and (shown is None or shown < p.pts):
                cuts.append((p.pts, p.dts if p.dts is not None else p.pts))
            pts.append(p.pts)
            shown = p.pts if shown is None else max(shown, p.pts)
    return _Scan(pts, [] if untimed or jumps.jumps else cuts, untimed, jumps.jumps)


def plan_input(path: str | os.PathLike[str], seconds: float, options: FileSourceOptions | None = None) -> InputPlan:
    """Probe ``path`` and cut it into segments of at least ``seconds`` (the last one may be up to 1.5x).

    The video stream is the one ``FileSource`` picks with ``options`` (so are its errors: ``StylizeError`` for a
    missing or unreadable input, one without video...).
    """
    src = FileSource(path, options or FileSourceOptions())
    try:
        index, tb, rotation = src.video.index, src.video.time_base, src.info.rotation
        passthrough, deinterlaced = [s.index for s in src.passthrough], src.info.deinterlace is not None
    finally:
        src.close()
    scan = _scan(Path(path), index, passthrough)
    if deinterlaced:
        scan = _Scan(scan.pts, [], scan.untimed, scan.jumps)
    ordered = sorted(scan.pts)
    span = ordered[-1] - ordered[0] if ordered else 0
    # in stream ticks; longer than the input: one segment (and --segment-seconds 1e308 is no int overflow)
    step = span + 1 if seconds / tb > span else round(seconds / tb)
    cuts: list[tuple[int, int]] = []
    last = ordered[0] if ordered else 0
    for k, dts in scan.cuts:
        if k - last >= step:
            cuts.append((k, dts))
            last = k
    # A short tail (< half a segment) joins the segment before it.
    if cuts and ordered and ordered[-1] - cuts[-1][0] < step // 2:
        cuts.pop()
    bounds = [(None, None)] + cuts  # (lo, seek) of each segment
    segments = []
    for i, (lo, seek) in enumerate(bounds):
        hi = bounds[i + 1][0] if i + 1 < len(bounds) else None
        first = 0 if lo is None else bisect.bisect_left(ordered, lo)
        end = len(ordered) + scan.untimed if hi is None else bisect.bisect_left(ordered, hi)
        segments.append(Segment(i, lo, hi, seek, end - first))
    duration = float(span * tb)
    return InputPlan(index, tb, rotation, len(ordered) + scan.untimed, duration, segments)
