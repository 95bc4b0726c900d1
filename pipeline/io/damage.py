"""Damaged input: per-stream counts, and the guard that keeps decoded video timestamps in order.

What FFmpeg does by default, and so do we: packets the demuxer flags corrupt (an MPEG-TS continuity
error, a CRC mismatch) still go to the decoder, and every frame the decoder returns is kept, also
frames it flags corrupt (concealed errors) — dropping them loses frames that ``ffmpeg`` and players
show. A packet the decoder refuses is counted and skipped; the decoder goes on with the next one.

What a muxer refuses, we drop and count instead of ending the run:
- a decoded frame whose timestamp does not come after the previous frame's (after bit errors the
  decoder can hand out a frame from the past, or the same PTS twice): ``FrameTimeline`` drops it and
  warns once; a frame without a PTS is given the previous one plus one nominal frame duration;
- a pass-through (audio, subtitle) packet the output muxer would refuse: ``PacketGuard`` in the sink.

``StreamDamage`` holds the counts per input stream; ``RunStats.damage`` reports them (summary line and
``--json``) keyed by ``"#<index> <type>"``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction

import av


@dataclass
class StreamDamage:
    """Counts of damage seen on one input stream (all zero for a clean stream)."""

    corrupt_packets: int = 0  # flagged corrupt by the demuxer; still decoded / copied
    decode_errors: int = 0  # packets the decoder refused (skipped)
    corrupt_frames: int = 0  # frames the decoder flagged corrupt (kept, as ffmpeg keeps them)
    frames_dropped: int = 0  # decoded frames whose timestamp went backwards or repeated
    frames_retimed: int = 0  # decoded frames without a timestamp, given one
    packets_dropped: int = 0  # pass-through packets the muxer would refuse
    bad_timestamps: int = 0  # packets with a PTS/DTS far off their stream's, repaired (discontinuity)
    frames_missing: int = 0  # the input ended this many frames before its header's end (truncated: ending)

    def any(self) -> bool:
        return any(asdict(self).values())

    def text(self) -> str:
        """``2 corrupt packets, 1 frame dropped (timestamp out of order)`` (non-zero counts only)."""
        words = {"corrupt_packets": "corrupt packet{s}", "decode_errors": "undecodable packet{s} skipped",
                 "corrupt_frames": "frame{s} decoded with errors (kept)",
                 "frames_dropped": "frame{s} dropped (timestamp out of order)",
                 "frames_retimed": "frame{s} without timestamp (retimed)",
                 "packets_dropped": "packet{s} dropped (refused by the muxer)",
                 "bad_timestamps": "packet{s} with a damaged timestamp (ignored)",
                 "frames_missing": "frame{s} missing at the end (truncated input)"}
        return ", ".join(f"{n} {words[k].format(s='' if n == 1 else 's')}" for k, n in asdict(self).items() if n)


def stream_key(stream: av.stream.Stream) -> str:
    """``"#1 audio"``: how reports name an input stream."""
    return f"#{stream.index} {stream.type}"


class DamageLog:
    """``StreamDamage`` per input stream, created on first use."""

    def __init__(self) -> None:
        self.streams: dict[str, StreamDamage] = {}

    def of(self, stream: av.stream.Stream) -> StreamDamage:
        return self.streams.setdefault(stream_key(stream), StreamDamage())

    def to_dict(self) -> dict[str, dict[str, int]]:
        """Non-zero counts only, per stream: ``{"#0 video": {"corrupt_packets": 1}}``."""
        return {k: {f: n for f, n in asdict(d).items() if n} for k, d in sorted(self.streams.items()) if d.any()}


def merge(*logs: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Sum several ``DamageLog.to_dict()`` results (source side and sink side)."""
    out: dict[str, dict[str, int]] = {}
    for log in logs:
        for key, counts in log.items():
            slot = out.setdefault(key, {})
            for field, n in counts.items():
                slot[field] = slot.get(field, 0) + n
    return dict(sorted(out.items()))


def damage_text(damage: dict[str, dict[str, int]]) -> str:
    """One clause for the summary line, e.g. ``#0 video: 1 corrupt packet; #1 audio: 2 packets dropped ...``."""
    return "; ".join(f"{key}: {StreamDamage(**counts).text()}" for key, counts in damage.items())


class FrameTimeline:
    """Admits decoded frames in strictly increasing presentation time (compared in seconds, exactly).

    ``admit(frame)`` returns False for a frame at or before the last admitted one (dropped: an encoder
    and muxer need increasing timestamps); a frame without a PTS gets the last one plus ``step`` (one
    nominal frame) in its own time base. ``damage`` receives the counts; the first drop is warned about.
    """

    def __init__(self, damage: StreamDamage, rate: Fraction | None, name: str) -> None:
        self.damage, self.rate, self.name = damage, rate, name
        self.last: Fraction | None = None
        self._warned = False

    def admit(self, frame: av.VideoFrame) -> bool:
        tb = frame.time_base
        if frame.pts is None or tb is None:
            return self._retime(frame)
        t = frame.pts * tb
        if self.last is not None and t <= self.last:
            self.damage.frames_dropped += 1
            if not self._warned:
                self._warned = True
                warnings.warn(f"{self.name}: damaged video: a decoded frame's timestamp ({float(t):.3f} s) does not "
                              f"follow the previous frame's ({float(self.last):.3f} s); such frames are dropped "
                              "(counted in the summary)", stacklevel=2)
            return False
        self.last = t
        return True

    def _retime(self, frame: av.VideoFrame) -> bool:
        tb = frame.time_base or (1 / self.rate if self.rate else Fraction(1, 25))
        step = Fraction(1) / self.rate if self.rate else tb
        t = Fraction(0) if self.last is None else self.last + step
        pts = -(-t // tb)  # ceil: strictly after the last frame in this time base
        frame.pts, frame.time_base = int(pts), tb
        self.last = pts * tb
        self.damage.frames_retimed += 1
        return True
