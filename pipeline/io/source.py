"""Sources: where decoded video frames (and packets to copy through) come from.

A ``Source`` is opened before the pipeline starts, exposes ``info`` (what the sink and the
processor need to set themselves up) and yields, in demux order, ``VideoItem``s (decoded software
or CUDA frames) and ``PacketItem``s (audio / subtitle packets for stream copy). ``FileSource`` reads
files with PyAV; ``stylize_video.pipeline.live.source`` adds camera / network / stdin sources (``LiveSource``) and
timestamp pacing (``PacedSource``) on the same protocol, so both feed the same ``Runner``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.colorinfo import colour_info_of
from stylize_video.pipeline.io.decode import VideoDecoder, demux_packets, park_frame_threads
from stylize_video.pipeline.io.discontinuity import Discontinuities
from stylize_video.pipeline.io.ending import ended_early, header_end
from stylize_video.pipeline.io.formatchange import FormatKeeper
from stylize_video.pipeline.io.items import (
    FileSourceOptions,
    PacketItem,
    Source,
    SourceStats,
    StreamInfo,
    VideoItem,
)
from stylize_video.pipeline.io.nvdec import dlpack_planes, make_hwaccel, nvdec_available, use_torch_context
from stylize_video.pipeline.io.paths import ffmpeg_path
from stylize_video.pipeline.io.seek import seek_before
from stylize_video.pipeline.io.streams import OtherVideo, attached_pictures, choose_video_stream, describe_video

# the protocol and its items live in stylize_video.pipeline.io.items; importable from here as before
__all__ = ["FileSource", "FileSourceOptions", "PacketItem", "Source", "SourceStats", "StreamInfo", "Unseekable",
           "VideoItem"]


class Unseekable(Exception):
    """The input refused a seek: it is opened again and read from the start."""


def _open_input(path: Path, hwaccel: object | None) -> av.container.InputContainer:
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as exc:  # a name the file system refuses (too long, ...)
        raise StylizeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not exists:
        raise StylizeError(f"input not found: {path}")
    if not is_file:
        raise StylizeError(f"input is not a file: {path}")
    url = ffmpeg_path(path)  # any local name opens as a file, ':' or not
    try:
        # damaged tags must not stop the video: bytes that are not UTF-8 become U+FFFD
        if hwaccel is not None:
            return av.open(url, "r", hwaccel=hwaccel, metadata_errors="replace")
        return av.open(url, "r", metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise StylizeError(f"{path} is not a readable video ({exc.strerror or type(exc).__name__})") from None


def _field_order(interlaced: bool, coded: int) -> int:
    """AVFieldOrder of the stream: the decoder's, top field first for interlaced frames it gives none."""
    if not interlaced:
        return 1
    return coded if coded in (2, 3, 4, 5) else 2


def start_origin(start: float | None, input_start: float | None = None) -> Fraction | None:
    """The input time written as 0 on output for ``--start`` seconds (None without it: timestamps kept).

    As ``ffmpeg -ss START -i IN`` does: every stream moves by the same amount, the input's own start
    (``input_start``, seconds: FFmpeg's ``start_time``, or the first timestamp where FFmpeg has none) plus
    ``START``, so the first kept frame lands at 0 (or at its distance past ``START``) and A/V sync and frame spacing
    are kept. Through ``str``: ``0.12`` is the decimal 3/25 the user typed, not the nearest binary float, so whole
    ticks stay whole; ``input_start`` (microseconds from FFmpeg) likewise to the microsecond."""
    if not start:
        return None
    return Fraction(str(start)) + (Fraction(input_start).limit_denominator(1_000_000) if input_start else 0)


def _end_time(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> float | None:
    """When ``frame`` stops being shown, in seconds: its duration, else one nominal frame; None if unknown."""
    if frame.time is None:
        return None
    if frame.duration and frame.time_base:
        return frame.time + float(frame.duration * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return frame.time + (1.0 / float(rate) if rate else 0.0)


class FileSource:
    """Decode one file's video stream with PyAV (``choose_video_stream``: FFmpeg's choice or
    ``options.video_stream``), deinterlaced where flagged (``options.deinterlace``); copy its audio and
    subtitle streams and attached pictures. Damage is counted in ``stats.damage`` (see
    ``stylize_video.pipeline.io.damage``) and never ends the run by itself."""

    _seekable = True  # False once the input refused a seek (then read from its start)

    def __init__(self, path: str | os.PathLike[str], options: FileSourceOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or FileSourceOptions()
        self.stats = SourceStats()
        self._stop = False
        if not self.options.hwdec:
            self._open("cpu", None)
            return
        if not nvdec_available() or not self.path.is_file():  # (a missing file gets its own error from _open)
            if self.path.is_file():
                warnings.warn("--hwdec: no CUDA device / NVDEC in this FFmpeg; decoding on the CPU", stacklevel=2)
            self._open("cpu", None)
            return
        # Zero-copy first; where exporting CUDA frames fails (EOPNOTSUPP was seen with PyAV 19 on an
        # H200), reopen with frames downloaded by FFmpeg and say so in the summary. Any failure to open
        # NVDEC at all (no context, driver, codec) decodes on the CPU: the whole open is inside the fallback.
        try:
            self._open_nvdec()
        except (StylizeError, av.error.FFmpegError, RuntimeError) as exc:
            warnings.warn(f"--hwdec: NVDEC could not be opened ({exc}); decoding on the CPU", stacklevel=2)
            self.stats = SourceStats()
            self._open("cpu", None)

    def _open_nvdec(self) -> None:
        index = self.options.hwdec_device
        use_torch_context(index)
        self._open("nvdec-dlpack", make_hwaccel(True, index))
        if self._interlaced_to_cpu():
            return
        first = next(i.frame for i in self._pending if isinstance(i, VideoItem))
        if first.format.name != "cuda":  # NVDEC did not take this codec/profile: FFmpeg decoded in software
            self.info.decode_path = "cpu (nvdec fallback)"
            return
        try:
            dlpack_planes(first)
            return
        except Exception as exc:  # noqa: BLE001 - any failure means: use the download path
            reason = f"DLPack export failed ({type(exc).__name__}: {exc})"
        self._close_container()
        self.stats = SourceStats()
        warnings.warn(f"--hwdec: {reason}; NVDEC frames are downloaded instead", stacklevel=3)
        self._open("nvdec-download", make_hwaccel(False, index))

    def _interlaced_to_cpu(self) -> bool:
        """Interlaced input to deinterlace: reopened for CPU decoding (bwdif/yadif take CPU frames)."""
        if not (self.info.interlaced and self.options.deinterlace.filter):
            return False
        self._close_container()
        self.stats = SourceStats()
        warnings.warn("--hwdec: interlaced input is decoded on the CPU so that it can be deinterlaced "
                      "(pass --deinterlace off to decode it with NVDEC)", stacklevel=3)
        self._open("cpu (interlaced input)", None)
        return True

    def _open(self, decode_path: str, hwaccel: object | None) -> None:
        self.container = _open_input(self.path, hwaccel)
        try:
            self._setup(decode_path)
        except Unseekable:  # (the failed seek left the demuxer at its end) read it again from the start
            self._close_container()
            self._seekable = False
            self._open(decode_path, hwaccel)
        except BaseException:
            self._close_container()
            raise

    def _setup(self, decode_path: str) -> None:
        c = self.container
        self.video = choose_video_stream(c, self.options.video_stream, str(self.path))
        self.video.thread_type = self.options.thread_type
        keep = (["audio"] if self.options.copy_audio else []) + (["subtitle"] if self.options.copy_subtitles else [])
        # cover art is copied where the output holds it (the sink drops it with a note elsewhere)
        self.passthrough = [s for s in c.streams if s.type in keep or s in attached_pictures(c)]
        self._decoder = VideoDecoder(self.video, self.stats, self.options.deinterlace, str(self.path))
        self._discontinuities = Discontinuities(c, str(self.path), self.stats.damage)
        self._format = FormatKeeper(str(self.path), self.video.codec_context)  # a format change mid-stream
        self._others = OtherVideo(self.video, str(self.path))
        # --start/--duration count from the input's start (FFmpeg's start_time, as `ffmpeg -ss/-t` do: MPEG-TS
        # starts at 1.4 s when ffmpeg wrote it, a broadcast recording anywhere), else from its first timestamp
        self._t0 = c.start_time / 1e6 if c.start_time is not None else None
        if self.options.start:
            # Seek to a keyframe before start; frames before start are decoded and dropped.
            at = self.options.start + (self._t0 or 0.0)
            self._seek(int(at / self.video.time_base), f"--start {self.options.start:g}")
        elif self.options.seek_pts is not None:
            self._seek(self.options.seek_pts, "the segment start")
        self._it = self._items()
        self._pending: list[VideoItem | PacketItem] = []
        first = None
        for item in self._it:
            self._pending.append(item)
            if isinstance(item, VideoItem):
                first = item.frame
                break
        if first is None:
            raise StylizeError(self._no_frames())
        cc = self.video.codec_context
        fmt = first.format.name
        if fmt == "cuda":  # device frame: the planes are in its software format
            fmt = first.sw_format.name
        frames = self.video.frames or None
        rate = self.video.average_rate or self.video.guessed_rate
        if not frames and self.video.duration and rate:
            frames = round(float(self.video.duration * self.video.time_base * rate))
        elif not frames and c.duration and rate:
            frames = round(c.duration / 1e6 * float(rate))
        interlaced = self._decoder.interlaced_seen or cc.field_order not in (0, 1)
        time_base, deint = self.video.time_base, self.options.deinterlace
        if deint.filter and (interlaced or deint.mode != "auto") and deint.rate == "field":
            # one frame per field: twice the rate, in the filter's output time base (input / 2)
            time_base, rate, frames = time_base / 2, (rate * 2 if rate else None), (frames * 2 if frames else None)
        if frames and self.options.duration and rate:
            frames = min(frames, math.ceil(self.options.duration * float(rate)))
        if frames and self.options.max_frames:
            frames = min(frames, self.options.max_frames)
        self.info = StreamInfo(
            width=first.width, height=first.height, pix_fmt=fmt, time_base=time_base,
            rate=rate, colour=colour_info_of(first, cc), rotation=round(first.rotation or 0),
            interlaced=interlaced, frames=frames, start_pts=first.pts, start=self._start_time(first),
            origin=start_origin(self.options.start, self._t0),
            codec=cc.name, decode_path=decode_path,
            stream=describe_video(self.video), field_order=_field_order(interlaced, cc.field_order),
            deinterlace=f"{deint.filter} ({deint.rate} rate)" if deint.filter and (interlaced or self._decoder.deinterlacer.used)
            else None,
        )

    def _seek(self, pts: int, what: str) -> None:
        """Seek to a keyframe at or before ``pts`` (video time base; ``seek_before`` checks where MPEG-TS lands).
        An input that cannot seek (a raw H.264 stream) is decoded from its start instead (``Unseekable``: opened
        again without seeking): the frames before ``pts`` are dropped all the same."""
        if not self._seekable:
            return
        try:
            seek_before(self.container, self.video, pts)
        except av.error.FFmpegError as exc:
            warnings.warn(f"{self.path} cannot seek ({exc.strerror or exc}): decoding from its start up to {what}",
                          stacklevel=4)
            raise Unseekable from None

    def _start_time(self, first: av.VideoFrame) -> Fraction | None:
        """The earliest timestamp handed over, seconds: the first frame's or a pass-through stream's start
        (from ``--start`` on, where packets before it are left out)."""
        if first.pts is None or first.time_base is None:
            return None
        times = [first.pts * first.time_base]
        for s in self.passthrough:
            if s.start_time is not None and s.time_base is not None and not s.disposition & av.stream.Disposition.attached_pic:
                begin = Fraction(self.options.start or 0) + Fraction(self._t0 or 0)
                times.append(max(s.start_time * s.time_base, begin) if self.options.start else s.start_time * s.time_base)
        return min(times)

    def _no_frames(self) -> str:
        """Why no frame came out: --start past the end (with the duration), or nothing decodable."""
        start = self.options.start
        if start:
            duration = self._duration_s()
            if duration is not None and start >= duration - 1e-6:
                return f"--start {start:g} is past the end of {self.path} (duration {duration:.2f} s)"
            return f"{self.path}: no decodable video frames after --start {start:g}" + (
                f" (duration {duration:.2f} s)" if duration is not None else "")
        return f"{self.path}: no decodable video frames" + (
            f" ({self.stats.corrupt} damaged packets)" if self.stats.corrupt else "")

    def _duration_s(self) -> float | None:
        """The input's duration in seconds (container, else video stream), None when unknown."""
        if self.container.duration:
            return self.container.duration / 1e6
        if self.video.duration and self.video.time_base:
            return float(self.video.duration * self.video.time_base)
        return None

    def _in_pts_window(self, pts: int) -> tuple[bool, bool]:
        """(keep, past_end) for a frame timestamp against ``pts_window``; decoders output in presentation
        order, so the first frame at or past ``hi`` ends the part."""
        lo, hi = self.options.pts_window
        return (lo is None or pts >= lo), (hi is not None and pts >= hi)

    def _in_window(self, t: float | None) -> tuple[bool, bool]:
        """(keep, past_end) for a time in seconds (the input's; the window counts from its start, ``_t0``)."""
        o = self.options
        if t is None:
            return True, False
        if self._t0 is None:  # a start FFmpeg did not know (a raw stream): the first timestamp
            self._t0 = t
        t -= self._t0
        if o.start and t < o.start - 1e-9:
            return False, False
        if o.duration is not None and t >= (o.start or 0.0) + o.duration - 1e-9:
            return False, True
        return True, False

    def _release(self, held: deque[tuple[float, av.Packet]], until: float | None) -> Iterator[PacketItem]:
        """Held pass-through packets that start before ``until`` seconds (all of them for None)."""
        while held and (until is None or held[0][0] < until):
            self.stats.passthrough_packets += 1
            yield PacketItem(held.popleft()[1])

    def _events(self) -> Iterator[av.Packet | av.VideoFrame]:
        """Pass-through packets and decoded video frames, in demux order, the decoder flushed at the end."""
        for packet in self._discontinuities.shifted(self._demux()):
            if self._stop:
                return
            if packet.stream.index == self.video.index:
                yield from self._decoder.frames(packet)
            else:
                yield packet
        yield from self._decoder.frames(None)

    def _items(self) -> Iterator[VideoItem | PacketItem]:
        index = 0
        # With --max-frames the end is only known when the last frame comes out of the decoder, which runs
        # frames behind the demuxer (frame threads): pass-through packets wait for the video to reach them,
        # so none past the last frame's end gets through. (--duration's end is known upfront.)
        held: deque[tuple[float, av.Packet]] = deque()
        hold = bool(self.options.max_frames)
        ended, last_end = True, None  # the input ran out (not the end of --duration / a segment)
        for event in self._events():
            if self._stop:
                return
            if isinstance(event, av.Packet):
                packet = event
                if packet.is_corrupt:
                    self.stats.damage.of(packet.stream).corrupt_packets += 1
                if packet.stream.disposition & av.stream.Disposition.attached_pic:
                    self.stats.passthrough_packets += 1
                    yield PacketItem(packet)  # a still image, not timed: always copied
                    continue
                if packet.pts is None and packet.dts is None:
                    continue  # no time to place it at (and the muxer would refuse it)
                # A packet (audio frame, subtitle cue) is kept when it starts inside --start/--duration;
                # without a PTS its DTS says when (a packet with neither was skipped above).
                ts = packet.pts if packet.pts is not None else packet.dts
                t = float(ts * packet.time_base)
                keep, _ = self._in_window(t)
                if keep:
                    held.append((t, packet))
                    if not hold:
                        yield from self._release(held, None)
                continue
            frame = event  # (with a PTS: the decoder's timeline gives one to a frame without)
            last_end = _end_time(frame, self.video)
            keep, past_end = self._in_window(frame.time) if self.options.pts_window is None \
                else self._in_pts_window(frame.pts)
            if past_end:
                ended = False
                break
            if not keep:
                continue
            self.stats.decoded += 1
            yield from self._release(held, frame.time)
            yield VideoItem(self._format(frame), index)
            index += 1
            if self.options.max_frames and index >= self.options.max_frames:
                yield from self._release(held, _end_time(frame, self.video))
                return
        if ended and not self._stop:
            info = getattr(self, "info", None)  # (None while _setup looks for the first frame)
            rate = info.rate if info is not None else self.video.average_rate or self.video.guessed_rate
            ended_early(str(self.path), header_end(self.container, self.video), last_end, rate, self._decoder.damage)
            self._others.note()
        yield from self._release(held, None)

    def _demux(self) -> Iterator[av.Packet]:
        """Packets of the video and pass-through streams (``demux_packets``); those of the other video streams
        only go to ``OtherVideo`` (a program switching its video PID is noted at the end)."""
        others = [s for s in self.container.streams.video if s is not self.video and s not in self.passthrough]
        packets = demux_packets(self.container, [self.video, *self.passthrough, *others], self.stats, str(self.path))
        for packet in packets:
            if packet.stream.type == "video" and packet.stream not in self.passthrough:
                self._others.see(packet)
                if packet.stream.index != self.video.index:
                    continue
            yield packet

    def __iter__(self) -> Iterator[VideoItem | PacketItem]:
        pending, self._pending = self._pending, []
        yield from pending
        for item in self._it:
            yield item
            if self._stop:
                return

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        """Close the input (after the run: no thread decodes from it any more)."""
        self._close_container()

    def _close_container(self) -> None:
        park_frame_threads(self.container)  # frames in flight at a stop or a reopen: see decode.park_frame_threads
        self.container.close()
