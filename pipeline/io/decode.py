"""Demuxing and decoding one video stream of a damaged or interlaced input, as FFmpeg does by default.

``VideoDecoder.frames(packet)`` turns a packet into the frames the model gets: decoded (frame threads;
corrupt-flagged packets decoded, corrupt-flagged frames kept, refused packets skipped — each counted in
``stats.damage``), deinterlaced where flagged (``stylize_video.pipeline.io.deinterlace``), and in strictly
increasing time (``stylize_video.pipeline.io.damage.FrameTimeline``). ``demux_packets`` reads the
packets of the chosen streams and survives what damaged MPEG-TS does to PyAV's demuxer;
``Discontinuities`` shifts the timestamps after a jump in formats that allow them (joined MPEG-TS).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

import av
from stylize_video.pipeline.io.damage import DamageLog, FrameTimeline
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions, Deinterlacer

_TS_DISCONT = 0x0200  # AVFMT_TS_DISCONT (libavformat/avformat.h): MPEG-TS, FLV, ... allow timestamp jumps
DISCONTINUITY_S = 10  # ffmpeg's -dts_delta_threshold default


class _Stats(Protocol):  # stylize_video.pipeline.io.source.SourceStats
    corrupt: int
    damage: DamageLog


class VideoDecoder:
    """Decoder, deinterlacer and timestamp guard of ``stream`` (an opened input video stream).

    ``name`` names the input in warnings. ``interlaced_seen`` turns True at the first frame the decoder
    flags interlaced.
    """

    def __init__(self, stream: av.video.stream.VideoStream, stats: _Stats, deinterlace: DeinterlaceOptions,
                 name: str) -> None:
        self.stream, self.stats, self.name = stream, stats, name
        self.damage = stats.damage.of(stream)
        self.timeline = FrameTimeline(self.damage, stream.average_rate or stream.guessed_rate, name)
        self.deinterlacer = Deinterlacer(deinterlace)
        self.interlaced_seen = False
        self._gpu_warned = False
        self._flushed = False

    def frames(self, packet: av.Packet | None) -> Iterator[av.VideoFrame]:
        """Frames for one video packet; None at the end flushes the decoder and the deinterlacer.

        Packets without data are ignored: decoding one would put the decoder in draining mode.
        """
        if packet is not None and not packet.size:
            return
        if packet is None and self._flushed:
            return
        self._flushed = packet is None
        if packet is not None and packet.is_corrupt:
            self.damage.corrupt_packets += 1
            self.stats.corrupt += 1
        try:
            decoded = self.stream.codec_context.decode(packet)
        except av.error.FFmpegError:  # a damaged packet: the decoder goes on with the next one
            self.damage.decode_errors += 1
            self.stats.corrupt += 1
            decoded = []
        for frame in decoded:
            if frame.time_base is None:  # frames drained by the flush carry none
                frame.time_base = self.stream.time_base
            self.damage.corrupt_frames += bool(frame.is_corrupt)
            self.interlaced_seen |= bool(frame.interlaced_frame)
            yield from filter(self.timeline.admit, self._deinterlace(frame))
        if packet is None:
            yield from filter(self.timeline.admit, self.deinterlacer.flush())

    def _deinterlace(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        if frame.format.name != "cuda":
            return self.deinterlacer.push(frame)
        # NVDEC frames on the GPU: the filters take CPU frames. A stream known to be interlaced is reopened
        # for CPU decoding (FileSource); frames flagged later in a mixed stream pass as they are, said once.
        if frame.interlaced_frame and self.deinterlacer.options.filter and not self._gpu_warned:
            self._gpu_warned = True
            warnings.warn("interlaced frames decoded by NVDEC are processed without deinterlacing "
                          "(run without --hwdec to deinterlace them)", stacklevel=3)
        return [frame]


def demux_packets(container: av.container.InputContainer, streams: list[av.stream.Stream], stats: _Stats,
                  name: str) -> Iterator[av.Packet]:
    """Packets of ``streams`` with data, in file order; a read error past the header ends the input (warned).

    A stream that appears after the header (MPEG-TS: a new PID or PMT, real or from damage) is ignored:
    PyAV 18 raises IndexError for it while yielding its end-of-demux dummies, after every packet was
    delivered, so that ends the demux like the end of the file (warned once).
    """
    it = container.demux(streams)
    while True:
        try:
            packet = next(it)
        except StopIteration:
            return
        except IndexError:
            warnings.warn(f"{name}: a stream appeared after the start of the file; it is ignored", stacklevel=2)
            return
        except av.error.FFmpegError as exc:
            stats.corrupt += 1
            warnings.warn(f"{name}: read error, stopping early ({exc.strerror or exc})", stacklevel=2)
            return
        if packet.size:
            yield packet


class Discontinuities:
    """Timestamp jumps where the format allows them (concatenated MPEG-TS recordings, a restarted broadcast):
    a packet more than ``DISCONTINUITY_S`` away from the end of what was read so far (all streams) and everything
    after it are shifted to continue from that end, as ``ffmpeg`` does (fftools ``ts_discontinuity_detect``,
    which continues from the previous packet). Without it every frame after a jump back would come before the
    frames already written and be dropped.

    ``apply(packet)`` changes the packet's PTS/DTS in place; ``jumps`` counts the corrections (warned once).
    """

    def __init__(self, container: av.container.InputContainer, name: str) -> None:
        self.enabled = bool(container.format.flags & _TS_DISCONT)
        self.name = name
        self.offset = Fraction(0)  # seconds added to every timestamp from here on
        self.last: Fraction | None = None  # end of the previous packet, seconds (after the offset)
        self.jumps = 0

    def apply(self, packet: av.Packet) -> None:
        tb = packet.time_base
        ts = packet.dts if packet.dts is not None else packet.pts
        if not self.enabled or ts is None or tb is None:
            return
        t = ts * tb + self.offset
        shown = packet.pts * tb + self.offset if packet.pts is not None else t
        if self.last is not None and abs(t - self.last) > DISCONTINUITY_S:
            if not self.jumps:
                warnings.warn(f"{self.name}: timestamps jump by {float(t - self.last):+.1f} s (a discontinuity, e.g. "
                              "joined recordings); what follows is shifted to continue", stacklevel=3)
            self.jumps += 1
            self.offset -= t - self.last
            shown, t = shown - (t - self.last), self.last
        shift = round(self.offset / tb)
        if shift and abs(ts) + abs(shift) < 1 << 62:  # (a shift past int64 would only come from garbage)
            packet.pts = packet.pts + shift if packet.pts is not None else None
            packet.dts = packet.dts + shift if packet.dts is not None else None
        # the end of everything read so far: after a jump, each stream continues after all it had
        end = max(t, shown) + (packet.duration or 0) * tb
        self.last = end if self.last is None else max(self.last, end)
