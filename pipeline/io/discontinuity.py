"""Timestamp discontinuities where the format allows them (joined MPEG-TS recordings, a restarted
broadcast), told apart from damaged timestamps.

FFmpeg's ``ffmpeg`` shifts what follows a timestamp jump in formats flagged ``AVFMT_TS_DISCONT`` so that it
continues from the previous packet (fftools ``ts_discontinuity_detect``): a DTS more than
``-dts_delta_threshold`` (10 s) from where the stream was, or going *back* by more than ``AV_TIME_BASE/10``
(0.1 s: ``cat a.ts a.ts`` of two short recordings that start at the same PTS). Without that, every frame
after a jump back would come before the frames already written and be dropped. ``Discontinuities`` does
the same, per stream, with these differences:

- **Each stream detects its own jump.** A muxer interleaves the streams with some skew (MPEG-TS writes
  audio up to ~0.7 s ahead of video, and the demuxer hands out a video PES only when the next one starts),
  so at a join the first packets of the next recording's audio are read before the last packets of the
  previous recording's video. Here the timeline is cut into *segments* (one per recording); each stream
  moves into the next segment when its own timestamps jump there, and takes that segment's offset, so the
  streams keep their relative timing. A segment continues after everything read before it was confirmed
  (``out_end``). (A stream whose packets would then overlap its own earlier ones continues after them.)
- **A jump must be confirmed.** A bit error in one PES header gives one packet a far-off DTS or PTS.
  A packet whose PTS and DTS are more than the threshold apart has one of them damaged: the one far from
  where the stream was is repaired (audio/subtitles: set to the other) or dropped (video PTS: the frame
  is re-timed later). A packet far from where its stream was (also an audio/video step forward of more
  than 1 s) is held until the stream's next packet: if that one continues from it, the jump is real; if
  not, the held packet's timestamps were damaged and are replaced by where the stream was (video: the
  DTS; its PTS is dropped).
- **A jump only one stream makes waits for another.** Several consecutive damaged PES headers continue
  from each other like a real jump. While other audio/video streams exist, the packets of a stream that
  jumped where no other stream went are held until another stream jumps there too (a join: the segment
  starts), or the stream comes back to where it was (damage: the held packets are repaired as above), or
  1 s of the stream's own time has gone by (a jump of this stream alone: the segment starts).

Each repair is counted per stream (``StreamDamage.bad_timestamps``) and the first one warned about. A
sparse stream (subtitle cues seconds apart) far ahead of its own last packet but within the threshold of
where the other streams are is not a jump; a stream's first packet joins the segment it is near (else the
newest one).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
from stylize_video.pipeline.io.damage import DamageLog

_TS_DISCONT = 0x0200  # AVFMT_TS_DISCONT (libavformat/avformat.h): MPEG-TS, FLV, ... allow timestamp jumps
DISCONTINUITY_S = 10  # ffmpeg's -dts_delta_threshold default
BACKWARD_S = Fraction(1, 10)  # ffmpeg: a DTS going back by more than AV_TIME_BASE/10 is a discontinuity
SUSPECT_S = Fraction(1)  # an audio/video step forward longer than this waits for the stream's next packet
HOLD_S = Fraction(1)  # how long (the stream's own time) a jump no other stream made waits for one
_INT64_SAFE = 1 << 62  # (a shift past int64 would only come from garbage)


@dataclass
class _Segment:
    """One continuous stretch of input timestamps (one recording of a join)."""

    start: Fraction  # raw time of its first packet, seconds
    now: Fraction  # latest raw packet end seen in it, seconds
    offset: Fraction | None = None  # seconds added to its raw timestamps; None while only one stream is there
    dead: bool = False  # a jump one stream made and came back from: damage, never joined
    members: set[int] = field(default_factory=set)  # streams placed in it
    packets: int = 0  # packets placed in it


@dataclass
class _Track:
    """Where one stream is."""

    step: Fraction  # nominal packet duration, seconds, for packets that carry none (MPEG-TS video)
    video: bool
    sparse: bool  # subtitles, data: gaps of seconds are normal
    segment: int = -1
    offset: Fraction = Fraction(0)
    last: Fraction | None = None  # raw DTS of its latest placed packet, seconds
    expected: Fraction | None = None  # raw time its next packet should have (last DTS + duration), seconds
    dts_end: Fraction | None = None  # output: last DTS + duration, seconds (the muxer wants DTS increasing)
    pts_end: Fraction | None = None  # output: latest PTS + duration, seconds (frames must come after it)
    held: list[tuple[av.Packet, Fraction]] = field(default_factory=list)  # (packet, raw DTS) not yet placed
    waiting: int | None = None  # the segment its held packets jumped to, while no other stream went there
    came_from: int | None = None  # the segment it was in before its latest move


def _step(stream: av.stream.Stream) -> Fraction:
    cc = stream.codec_context
    if stream.type == "video":
        rate = nominal_rate(stream)
        return Fraction(1) / Fraction(rate) if rate else Fraction(0)
    if stream.type == "audio" and cc is not None and cc.frame_size and cc.sample_rate:
        return Fraction(cc.frame_size, cc.sample_rate)
    return Fraction(0)


def nominal_rate(stream: av.stream.Stream) -> Fraction | None:
    """The frame rate one nominal frame lasts 1/rate of: FFmpeg's guess (``av_guess_frame_rate``, what
    ``ffmpeg`` uses), else the average; None when neither is known. (MPEG-TS ``avg_frame_rate`` can be far
    off: 150 for a 25 fps stream.)"""
    rate = getattr(stream, "guessed_rate", None) or getattr(stream, "average_rate", None)
    return Fraction(rate) if rate else None


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
    packet far from its stream's timeline is yielded once decided (after the stream's next packet, another
    stream's jump, or at the end). ``jumps`` counts the discontinuities found (segments started),
    ``damage`` (optional) receives the repaired timestamps per stream. Does nothing in formats without
    ``AVFMT_TS_DISCONT`` (``enabled``).
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
        """``packets`` with their timestamps made continuous (see the module docstring)."""
        for packet in packets:
            yield from self.feed(packet)
        yield from self.flush()

    def feed(self, packet: av.Packet) -> list[av.Packet]:
        """The packets ready after ``packet`` (none while it is held; held ones when they are decided)."""
        if not self.enabled or packet.time_base is None:
            return [packet]
        track = self.tracks.get(packet.stream.index)
        if track is None:
            kind = packet.stream.type
            track = self.tracks[packet.stream.index] = _Track(_step(packet.stream), kind == "video",
                                                              kind not in ("video", "audio"))
        self._screen(packet, track)
        at = _raw(packet)
        if at is None:
            return [packet]
        if track.held:
            return self._resolve(track, packet, at)
        return self._take(track, packet, at)

    def flush(self) -> list[av.Packet]:
        """Held packets at the end of the input: a jump only one stream made stands (its segment starts); a
        packet nothing confirmed is repaired."""
        out = []
        for j in sorted({t.waiting for t in self.tracks.values() if t.waiting is not None}):
            out += self._settle(j)
        for track in self.tracks.values():
            out += self._repair_held(track)
        return out

    # -- where a packet belongs ---------------------------------------------------------------------
    def _in_step(self, track: _Track, at: Fraction) -> bool:
        """``at`` goes on from where ``track`` is: not back by more than 0.1 s, not too far ahead."""
        if track.last is not None and at < track.last - BACKWARD_S:
            return False
        ahead = self.threshold if track.sparse else min(SUSPECT_S, self.threshold)
        return track.expected is None or at - track.expected <= ahead

    def _goes_on(self, at: Fraction, held_at: Fraction) -> bool:
        """A packet at ``at`` continues from one held at ``held_at``."""
        return -BACKWARD_S <= at - held_at <= self.threshold

    def _near(self, at: Fraction, first: int) -> int | None:
        """The newest settled segment from ``first`` on whose timeline ``at`` is within the threshold of."""
        for j in range(len(self.segments) - 1, max(first, 0) - 1, -1):
            s = self.segments[j]
            if s.offset is not None and abs(at - s.now) <= self.threshold:
                return j
        return None

    def _newer(self, track: _Track, at: Fraction) -> int | None:
        """A segment after ``track``'s that another stream jumped to and ``at`` belongs to: the closest to
        ``at`` (inside its span counts as 0), the oldest of equals (streams go through recordings in order)."""
        best, best_d = None, None
        for j in range(track.segment + 1, len(self.segments)):
            s = self.segments[j]
            d = max(s.start - at, at - s.now, Fraction(0))
            if not s.dead and d <= self.threshold and (best_d is None or d < best_d):
                best, best_d = j, d
        return best

    def _take(self, track: _Track, packet: av.Packet, at: Fraction) -> list[av.Packet]:
        """``packet`` placed where it belongs, or held (nothing returned) when it may be a jump."""
        if track.segment < 0:  # first packet: the segment it is near, else the newest (or the first one)
            if not self.segments:
                self.segments.append(_Segment(at, at, Fraction(0)))
            near = self._near(at, 0)
            settled = [j for j, s in enumerate(self.segments) if s.offset is not None]
            self._join(track, settled[-1] if near is None else near, at, _shown(packet))
            return [self._place(packet, track, at)]
        if self._in_step(track, at):
            return [self._place(packet, track, at)]
        if at > track.expected + self.threshold or (track.sparse and at >= track.last - BACKWARD_S):
            near = self._near(at, track.segment)  # far ahead of itself, where the other streams are
            if near is not None:
                if near != track.segment:
                    self._join(track, near, at, _shown(packet))
                return [self._place(packet, track, at)]
        track.held.append((packet, at))
        return []

    def _resolve(self, track: _Track, packet: av.Packet, at: Fraction) -> list[av.Packet]:
        """The stream's next packet after held ones: it goes on from them (a jump is confirmed, or a jump only
        this stream made keeps waiting), or from where the stream was before them (they were damaged)."""
        durations = [self._duration(p, track) for p, _ in track.held]
        held_at = track.held[-1][1]
        old_next = track.expected + sum(durations)  # where the stream would be had the held ones been right
        ahead = self.threshold if track.sparse else min(SUSPECT_S, self.threshold)
        back = track.last - BACKWARD_S <= at <= old_next + ahead
        goes_on = -BACKWARD_S <= at - held_at <= self.threshold
        if goes_on and (not back or abs(at - held_at - durations[-1]) <= abs(at - old_next)):
            track.held.append((packet, at))
            if track.waiting is None:
                return self._jumped(track)
            seg = self.segments[track.waiting]
            seg.now = max(seg.now, at + self._duration(packet, track))
            return self._settle(track.waiting) if at - track.held[0][1] >= HOLD_S else []
        if track.waiting is not None:  # a jump only this stream made, and it came back: damage
            self.segments[track.waiting].dead = True
            track.waiting = None
        return self._repair_held(track) + self._take(track, packet, at)

    @staticmethod
    def _duration(packet: av.Packet, track: _Track) -> Fraction:
        """How long ``packet`` lasts, seconds: one nominal frame for video (MPEG-TS video durations come from
        ``avg_frame_rate``, which can be far off), the packet's own duration for the rest."""
        if track.video and track.step:
            return track.step
        return packet.duration * packet.time_base if packet.duration else track.step

    def _jumped(self, track: _Track) -> list[av.Packet]:
        """A confirmed step of ``track`` (its held packets): placed where they continue, or a jump."""
        first, at = track.held[0]
        if track.last - BACKWARD_S <= at <= track.expected + self.threshold:  # a gap, not a jump
            return self._release(track)
        j = self._newer(track, at)
        if j is not None and self.segments[j].offset is not None:  # where another stream jumped to
            self._join(track, j, at, _shown(first))
            return self._release(track)
        if j is None and self._came_back(track, at):
            return self._release(track)
        if j is None:
            self.segments.append(_Segment(at, max(a for _, a in track.held) + track.step))
            j = len(self.segments) - 1
        track.waiting = j
        alone = not any(t is not track and not t.sparse and t.segment >= 0 for t in self.tracks.values())
        if alone or any(t is not track and t.waiting == j for t in self.tracks.values()):
            return self._settle(j)
        return []

    def _came_back(self, track: _Track, at: Fraction) -> bool:
        """``track`` jumps back to the segment it came from, and no other stream was ever in the one it
        leaves: that one was damage (its packets are counted) and the stream takes its old offset again, A/V
        in step (the stretch went on from where the stream was, ``_settle``; should it reach past where the
        stream comes back, the frames there are dropped as out of order rather than the video late for good)."""
        here, back = self.segments[track.segment], track.came_from
        index = track.held[0][0].stream.index
        if back is None or here.members != {index} or abs(at - self.segments[back].now) > self.threshold:
            return False
        here.dead = True
        self._count(track.held[0][0], "timestamp", here.packets)
        track.segment, track.offset, track.came_from = back, self.segments[back].offset, None
        return True

    def _settle(self, j: int) -> list[av.Packet]:
        """Segment ``j`` starts; the packets held for it are placed. Where several streams went, it continues
        after everything read so far (a join); where one stream went alone, where that stream was (the others
        are still in their recording: it stays in step with them, and a jump back finds it there)."""
        seg = self.segments[j]
        waiting = [t for t in self.tracks.values() if t.waiting == j]
        base = waiting[0].dts_end if len(waiting) == 1 else self.out_end
        if not self.jumps:
            t = waiting[0]
            jump = t.held[0][1] - t.expected if t.expected is not None else Fraction(0)
            warnings.warn(f"{self.name}: timestamps jump by {float(jump):+.1f} s (a discontinuity, e.g. joined "
                          "recordings); what follows is shifted to continue", stacklevel=5)
        self.jumps += 1
        seg.offset = (base if base is not None else seg.start) - seg.start
        out = []
        for t in waiting:
            t.waiting = None
            first, at = t.held[0]
            self._join(t, j, at, _shown(first))
            out += self._release(t)
        return out

    def _join(self, track: _Track, segment: int, at: Fraction, shown: Fraction | None) -> None:
        """Move ``track`` into ``segment`` at a packet decoded at ``at``, shown at ``shown`` (raw seconds)."""
        if segment != track.segment:
            track.came_from = track.segment if track.segment >= 0 else None
        track.segment = segment
        offset = self.segments[segment].offset
        if track.dts_end is not None and at + offset < track.dts_end:  # would overlap its own packets
            offset = track.dts_end - at
        if track.pts_end is not None and shown is not None and shown + offset < track.pts_end:
            offset = track.pts_end - shown
        track.offset = offset

    # -- timestamps ---------------------------------------------------------------------------------
    def _release(self, track: _Track) -> list[av.Packet]:
        held, track.held = track.held, []
        return [self._place(p, track, at) for p, at in held]

    def _place(self, packet: av.Packet, track: _Track, at: Fraction) -> av.Packet:
        """Shift ``packet`` by its stream's offset and record where the stream now is."""
        tb = packet.time_base
        duration = self._duration(packet, track)
        raw_end = max(t * tb for t in (packet.pts, packet.dts) if t is not None) + duration
        track.expected = at + duration
        if packet.dts is not None:  # (a video packet whose DTS was dropped is placed at its PTS, further on)
            track.last = at
        elif track.last is None:
            track.last = at - BACKWARD_S
        segment = self.segments[track.segment]
        segment.now = max(segment.now, raw_end)
        segment.members.add(packet.stream.index)
        segment.packets += 1
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

    def _repair_held(self, track: _Track) -> list[av.Packet]:
        held, track.held = track.held, []
        return [self._repair(p, track) for p, _ in held]

    def _repair(self, packet: av.Packet, track: _Track) -> av.Packet:
        """A held packet whose timestamps are damaged. It gets the time its stream was at (video: as DTS, no
        PTS: the decoded frame is re-timed), else none."""
        tb = packet.time_base
        at = round(track.expected / tb) if track.expected is not None else None
        packet.dts = at
        packet.pts = None if track.video else at
        self._count(packet, "timestamp")
        return self._place(packet, track, track.expected) if at is not None else packet

    def _count(self, packet: av.Packet, what: str, n: int = 1) -> None:
        """``n`` packets of ``packet``'s stream had a damaged ``what`` (the first time: warned)."""
        first = not self.repaired
        self.repaired += n
        self.damage.of(packet.stream).bad_timestamps += n
        if first:
            warnings.warn(f"{self.name}: damaged timestamp: a {packet.stream.type} packet's {what} is far from its "
                          "stream's; it is ignored (further ones too, counted in the summary)", stacklevel=5)
