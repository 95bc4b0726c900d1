"""Demuxing and decoding one video stream of a damaged or interlaced input, as FFmpeg does by default.

``VideoDecoder.frames(packet)`` turns a packet into the frames the model gets: decoded (frame threads;
corrupt-flagged packets decoded, corrupt-flagged frames kept, refused packets skipped — each counted in
``stats.damage``), deinterlaced where flagged (``stylize_video.pipeline.io.deinterlace``), and in strictly
increasing time (``stylize_video.pipeline.io.damage.FrameTimeline``). ``demux_packets`` reads the
packets of the chosen streams and survives what damaged MPEG-TS does to PyAV's demuxer
(``stylize_video.pipeline.io.discontinuity`` makes their timestamps continuous after a jump).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Protocol

import av
import av.logging
from stylize_video.pipeline.io.damage import DamageLog, FrameTimeline
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions, Deinterlacer
from stylize_video.pipeline.io.discontinuity import nominal_rate
from stylize_video.pipeline.io.fflog import ffmpeg_log


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
        self.timeline = FrameTimeline(self.damage, nominal_rate(stream), name)
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

    A stream that appears after the header (MPEG-TS: a new PID or PMT, real or from damage) is ignored,
    with one warning at the end (``streams_added``). PyAV 18 may raise IndexError for it while yielding its
    end-of-demux dummies, after every packet was delivered — or not: whether it does depends on memory
    it reads past an array (``InputContainer.demux``'s ``include_stream``), so that IndexError is taken as
    the end of the demux and the warning does not depend on it.
    """
    it = container.demux(streams)
    while True:
        try:
            packet = next(it)
        except (StopIteration, IndexError):
            break
        except av.error.FFmpegError as exc:
            stats.corrupt += 1
            warnings.warn(f"{name}: read error, stopping early ({exc.strerror or exc})", stacklevel=2)
            return
        if packet.size:
            yield packet
    if streams_added(container):
        warnings.warn(f"{name}: a stream appeared after the start of the file; it is ignored", stacklevel=2)


def park_frame_threads(container: av.container.InputContainer) -> None:
    """Let every open video decoder's frame threads finish before the container is closed and freed.

    A frame-threaded decoder left with frames in flight (``thread_type`` AUTO/FRAME, decoding stopped early)
    is freed by PyAV with the GIL held, joining its threads; one of them logging an error then needs the GIL
    while an ``ffmpeg_log`` window is open anywhere in the process: a deadlock (see ``fflog``).
    ``flush_buffers`` (``avcodec_flush_buffers``) runs without the GIL and waits for the threads, so the free
    that follows has nothing left to log. Only call it when no other thread decodes from ``container``."""
    for stream in container.streams.video:
        codec = stream.codec_context
        if codec is not None and codec.is_open:
            codec.flush_buffers()


_STREAM_LINE = re.compile(r"^\s*Stream #\d+:(\d+)", re.MULTILINE)


def streams_added(container: av.container.InputContainer) -> int:
    """How many streams the demuxer added after the header (PyAV's ``streams`` is fixed at open; FFmpeg's own
    list, as ``av_dump_format`` prints it, has them all). Logged at info level, collected, not printed."""
    with ffmpeg_log(av.logging.INFO):
        dump = container.dumps_format()
    return max(0, len(set(_STREAM_LINE.findall(dump))) - len(container.streams))
