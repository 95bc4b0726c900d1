"""Timestamp discontinuities where the format allows them (joined MPEG-TS recordings, a restarted
broadcast), told apart from a single damaged timestamp.

FFmpeg's ``ffmpeg`` shifts what follows a timestamp jump of more than ``-dts_delta_threshold`` (10 s) in
formats flagged ``AVFMT_TS_DISCONT`` so that it continues from the previous packet (fftools
``ts_discontinuity_detect``); without that, every frame after a jump back would come before the frames
already written and be dropped. ``Discontinuities`` does the same, per stream, with two differences:

- **Each stream detects its own jump.** A muxer interleaves the streams with some skew (MPEG-TS writes
  audio up to ~0.7 s ahead of video), so at a join the first packets of the next recording's audio are
  read before the last packets of the previous recording's video. One offset for all streams gave those
  video packets the new offset (a frame re-timed, the next one dropped). Here the timeline is cut into
  *segments* (one per recording); each stream moves into the next segment when its own timestamps jump
  there, and takes that segment's offset, so the streams keep their relative timing. (A stream whose
  packets would then overlap its own earlier ones continues after them instead.)
- **A jump must be confirmed.** A bit error in one PES header gives one packet a far-off DTS or PTS.
  A packet whose PTS and DTS are more than the threshold apart has one of them damaged: the one far from
  where the stream was is repaired (audio/subtitles: set to the other) or dropped (video PTS: the frame
  is re-timed later). A packet far from where its stream was is held until the stream's next packet: if
  that one continues from it, the jump is real (a new segment starts, continuing from the end of
  everything read so far); if not, the held packet's timestamps were damaged and are replaced by where
  the stream was (video: the DTS; its PTS is dropped). Each repair is counted per stream
  (``StreamDamage.bad_timestamps``) and the first one warned about.

A sparse stream (subtitle cues seconds apart) far from its own last packet but within the threshold of
where the other streams are is not a jump; a stream's first packet joins the segment it is near (else
the newest one).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
from stylize_video.pipeline.io.damage import DamageLog

_TS_DISCONT = 0x0200  # AVFMT_TS_DISCONT (libavformat/avformat.h): MPEG-TS, FLV, ... allow timestamp jumps
DISCONTINUITY_S = 10  # ffmpeg's -dts_delta_threshold default
_INT64_SAFE = 1 << 62  # (a shift past int64 would only come from garbage)


@dataclass
class _Segment:
    """One continuous stretch of input timestamps (one recording of a join)."""

    offset: Fraction  # seconds added to its raw timestamps
    now: Fraction  # latest raw packet end seen in it, seconds


@dataclass
class _Track:
    """Where one stream is."""

    step: Fraction  # nominal packet duration, seconds, for packets that carry none (MPEG-TS video)
    video: bool
    segment: int = -1
    offset: Fraction = Fraction(0)
    expected: Fraction | None = None  # raw time its next packet should have (last DTS + duration), seconds
    dts_end: Fraction | None = None  # output: last DTS + duration, seconds (the muxer wants DTS increasing)
    pts_end: Fraction | None = None  # output: latest PTS + duration, seconds (frames must come after it)
    held: av.Packet | None = None  # a packet far from where the stream was, waiting for the next one
    held_at: Fraction | None = None


def _step(stream: av.stream.Stream) -> Fraction:
    cc = stream.codec_context
    if stream.type == "video":
        rate = getattr(stream, "average_rate", None) or getattr(stream, "guessed_rate", None)
        return Fraction(1) / Fraction(rate) if rate else Fraction(0)
    if stream.type == "audio" and cc is not None and cc.frame_size and cc.sample_rate:
        return Fraction(cc.frame_size, cc.sample_rate)
    return Fraction(0)


def _shown(packet: av.Packet) -> Fraction | None:
    """The packet's presentation time in seconds, None without a PTS."""
    return None if packet.pts is None else packet.pts * packet.time_base


def _raw(packet: av.Packet) -> Fraction | None:
    """The packet's decoding time in seconds (its PTS when it has no DTS), None without either."""
    ts = packet.dts if packet.dts is not None else packet.pts
    return None if ts is None else ts * packet.time_base


class Discontinuities:
    """Per-stream timestamp continuity of one input (``container``; ``name`` names it in warnings).

    ``shifted(packets)`` yields the packets (all streams, demux order) with PTS/DTS changed in place; a
    packet far from its stream's timeline is yielded after the stream's next packet (or at the end).
    ``jumps`` counts the discontinuities found (new segments), ``damage`` (optional) receives the
    repaired timestamps per stream. Does nothing in formats without ``AVFMT_TS_DISCONT`` (``enabled``).
    """

    def __init__(self, container: av.container.InputContainer, name: str, damage: DamageLog | None = None,
                 threshold: float = DISCONTINUITY_S) -> None:
        self.enabled = bool(container.format.flags & _TS_DISCONT)
        self.name, self.damage, self.threshold = name, damage or DamageLog(), Fraction(threshold)
        self.segments: list[_Segment] = []
        self.tracks: dict[int, _Track] = {}
        self.out_end: Fraction | None = None  # output end of everything so far, seconds
        self.jumps = 0
        self.repaired = 0

    def shifted(self, packets: Iterable[av.Packet]) -> Iterator[av.Packet]:
        """``packets`` with their timestamps made continuous (see the class docstring)."""
        for packet in packets:
            yield from self.feed(packet)
        yield from self.flush()

    def feed(self, packet: av.Packet) -> list[av.Packet]:
        """The packets ready after ``packet`` (none while it is held; the held one and it when it decides)."""
        if not self.enabled or packet.time_base is None:
            return [packet]
        track = self.tracks.get(packet.stream.index)
        if track is None:
            track = self.tracks[packet.stream.index] = _Track(_step(packet.stream), packet.stream.type == "video")
        self._screen(packet, track)
        at = _raw(packet)
        out = []
        if track.held is not None:
            held, held_at = track.held, track.held_at
            track.held = track.held_at = None
            if at is not None and abs(at - held_at) <= self.threshold:  # the stream goes on from there
                near = self._near(held_at, track.segment + 1)  # where another stream jumped to meanwhile
                if near is None:
                    self._start_segment(track, held_at)
                else:
                    self._join(track, near, held_at, _shown(held))
                out.append(self._place(held, track, held_at))
            else:
                out.append(self._repair(held, track))
        if at is None:
            out.append(packet)
        elif self._assign(track, at, _shown(packet)):
            out.append(self._place(packet, track, at))
        else:
            track.held, track.held_at = packet, at
        return out

    def flush(self) -> list[av.Packet]:
        """Held packets at the end of the input: nothing confirmed their jump, so they are repaired."""
        out = []
        for track in self.tracks.values():
            if track.held is not None:
                held, track.held, track.held_at = track.held, None, None
                out.append(self._repair(held, track))
        return out

    # -- where a packet belongs ---------------------------------------------------------------------
    def _near(self, at: Fraction, first: int) -> int | None:
        """The newest segment from ``first`` on whose timeline ``at`` is within the threshold of."""
        for j in range(len(self.segments) - 1, max(first, 0) - 1, -1):
            if abs(at - self.segments[j].now) <= self.threshold:
                return j
        return None

    def _assign(self, track: _Track, at: Fraction, shown: Fraction | None) -> bool:
        """Put ``track`` in the segment ``at`` belongs to; False when it is near none (a jump to confirm)."""
        if track.segment < 0:  # first packet: the segment it is near, else the newest (or the first one)
            if not self.segments:
                self.segments.append(_Segment(Fraction(0), at))
            near = self._near(at, 0)
            self._join(track, len(self.segments) - 1 if near is None else near, at, shown)
            return True
        if track.expected is not None and abs(at - track.expected) <= self.threshold:
            return True
        near = self._near(at, track.segment)
        if near is None:
            return False
        if near != track.segment:
            self._join(track, near, at, shown)
        return True

    def _join(self, track: _Track, segment: int, at: Fraction, shown: Fraction | None) -> None:
        """Move ``track`` into ``segment`` at a packet decoded at ``at``, shown at ``shown`` (raw seconds)."""
        track.segment = segment
        offset = self.segments[segment].offset
        if track.dts_end is not None and at + offset < track.dts_end:  # would overlap its own packets
            offset = track.dts_end - at
        if track.pts_end is not None and shown is not None and shown + offset < track.pts_end:
            offset = track.pts_end - shown
        track.offset = offset

    def _start_segment(self, track: _Track, at: Fraction) -> None:
        """A confirmed jump of ``track`` to raw time ``at``: a segment continuing after everything so far."""
        if not self.jumps:
            jump = at - track.expected if track.expected is not None else Fraction(0)
            warnings.warn(f"{self.name}: timestamps jump by {float(jump):+.1f} s (a discontinuity, e.g. joined "
                          "recordings); what follows is shifted to continue", stacklevel=5)
        self.jumps += 1
        base = self.out_end if self.out_end is not None else at
        self.segments.append(_Segment(base - at, at))
        track.segment, track.offset = len(self.segments) - 1, base - at

    # -- timestamps ---------------------------------------------------------------------------------
    def _place(self, packet: av.Packet, track: _Track, at: Fraction) -> av.Packet:
        """Shift ``packet`` by its stream's offset and record where the stream now is."""
        tb = packet.time_base
        duration = packet.duration * tb if packet.duration else track.step
        raw_end = max(t * tb for t in (packet.pts, packet.dts) if t is not None) + duration
        track.expected = at + duration
        segment = self.segments[track.segment]
        segment.now = max(segment.now, raw_end)
        shift = round(track.offset / tb)
        if shift and abs(round(at / tb)) + abs(shift) < _INT64_SAFE:
            packet.pts = packet.pts + shift if packet.pts is not None else None
            packet.dts = packet.dts + shift if packet.dts is not None else None
        end = raw_end + track.offset
        dts_end = at + duration + track.offset
        track.dts_end = dts_end if track.dts_end is None else max(track.dts_end, dts_end)
        track.pts_end = end if track.pts_end is None else max(track.pts_end, end)
        self.out_end = end if self.out_end is None else max(self.out_end, end)
        return packet

    def _screen(self, packet: av.Packet, track: _Track) -> None:
        """A packet whose PTS and DTS are far apart: the one far from the stream's timeline is damaged."""
        if packet.pts is None or packet.dts is None:
            return
        tb = packet.time_base
        if abs(packet.pts - packet.dts) * tb <= self.threshold:
            return
        ref = track.expected
        pts_bad = ref is not None and abs(packet.pts * tb - ref) > abs(packet.dts * tb - ref)
        if pts_bad:
            packet.pts = None if track.video else packet.dts
        else:
            packet.dts = None if track.video else packet.pts
        self._count(packet, "PTS" if pts_bad else "DTS")

    def _repair(self, packet: av.Packet, track: _Track) -> av.Packet:
        """A held packet nothing followed: its timestamps are damaged. It gets the time its stream was at
        (video: as DTS, no PTS: the decoded frame is re-timed), else none."""
        tb = packet.time_base
        at = round(track.expected / tb) if track.expected is not None else None
        packet.dts = at
        packet.pts = None if track.video else at
        self._count(packet, "timestamp")
        return self._place(packet, track, track.expected) if at is not None else packet

    def _count(self, packet: av.Packet, what: str) -> None:
        self.repaired += 1
        self.damage.of(packet.stream).bad_timestamps += 1
        if self.repaired == 1:
            warnings.warn(f"{self.name}: damaged timestamp: a {packet.stream.type} packet's {what} is far from its "
                          "stream's; it is ignored (further ones too, counted in the summary)", stacklevel=5)
