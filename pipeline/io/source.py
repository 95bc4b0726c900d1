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
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.colorinfo import ColourInfo, colour_info_of
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.decode import Discontinuities, VideoDecoder, demux_packets
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions
from stylize_video.pipeline.io.paths import ffmpeg_path
from stylize_video.pipeline.io.streams import attached_pictures, choose_video_stream, describe_video


@dataclass
class StreamInfo:
    """What is known about the video stream once its first frame is decoded."""

    width: int
    height: int
    pix_fmt: str  # software format of decoded frames (NV12 for NVDEC downloads)
    time_base: Fraction
    rate: Fraction | None  # nominal (average) frame rate; None for live sources that don't know
    colour: ColourInfo
    rotation: int = 0  # display-matrix rotation, degrees counter-clockwise
    interlaced: bool = False
    frames: int | None = None  # expected count, for progress bars (None: unknown)
    start_pts: int | None = None
    codec: str = ""
    decode_path: str = "cpu"  # "cpu" | "nvdec-download" | "nvdec-dlpack"
    stream: str = ""  # which input stream is processed, e.g. "#0 (h264 1920x1080, default)"
    deinterlace: str | None = None  # "bwdif (frame rate)" when frames are deinterlaced, None when not


@dataclass
class VideoItem:
    """A decoded frame. ``frame.pts`` / ``frame.time_base`` are the input timestamps, kept on output."""

    frame: av.VideoFrame
    index: int


@dataclass
class PacketItem:
    """A packet of a pass-through stream (``packet.stream`` is the input stream)."""

    packet: av.Packet


@dataclass
class SourceStats:
    decoded: int = 0
    corrupt: int = 0  # packets flagged corrupt (still decoded / copied) plus packets the decoder refused
    passthrough_packets: int = 0
    damage: DamageLog = field(default_factory=DamageLog)  # per input stream (stylize_video.pipeline.io.damage)


@runtime_checkable
class Source(Protocol):
    """Opened video input. Iterating yields ``VideoItem | PacketItem`` until the end or ``stop()``."""

    info: StreamInfo
    #: input streams whose packets are copied (templates for the sink's output streams)
    passthrough: list[av.stream.Stream]
    stats: SourceStats

    def __iter__(self) -> Iterator[VideoItem | PacketItem]: ...

    def stop(self) -> None:
        """Ask the iterator to end early (thread-safe); called on Ctrl-C or when a sink is full."""

    def close(self) -> None: ...


@dataclass
class FileSourceOptions:
    start: float | None = None  # seconds
    duration: float | None = None  # seconds
    max_frames: int | None = None
    hwdec: bool = False  # NVDEC through PyAV's HWAccel
    hwdec_device: int = 0  # CUDA device index NVDEC decodes on: the model's (--device cuda:N)
    copy_audio: bool = True
    copy_subtitles: bool = True
    # "AUTO" (frame + slice threads) for throughput; live sources use "SLICE": frame threads add frames of delay
    thread_type: str = "AUTO"
    extra_warnings: list[str] = field(default_factory=list)
    video_stream: int | None = None  # input stream index (ffprobe's #0:N); None: FFmpeg's choice
    deinterlace: DeinterlaceOptions = field(default_factory=DeinterlaceOptions)
    # A part of the stream by exact timestamps (``stylize_video.pipeline.batch`` segments): seek to the keyframe at or
    # before ``seek_pts``, then keep the frames with ``lo <= pts < hi`` (video stream time base; None: open end).
    seek_pts: int | None = None
    pts_window: tuple[int | None, int | None] | None = None


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


def _end_time(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> float | None:
    """When ``frame`` stops being shown, in seconds: its duration, else one nominal frame; None if unknown."""
    if frame.time is None:
        return None
    if frame.duration and frame.time_base:
        return frame.time + float(frame.duration * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return frame.time + (1.0 / float(rate) if rate else 0.0)


def nvdec_available() -> bool:
    """FFmpeg built with CUDA hwaccel and a CUDA device visible to torch."""
    import torch
    from av.codec.hwaccel import hwdevices_available

    return "cuda" in hwdevices_available() and torch.cuda.is_available()


def _make_hwaccel(keep_on_gpu: bool, device_index: int = 0) -> object:
    """NVDEC decoder settings: frames kept in device memory (for DLPack) or downloaded as NV12/P010.

    FFmpeg's CUDA device uses torch's context: ``current_ctx=1`` (FFmpeg's hwcontext_cuda.c, PyAV >= 18.1
    passes ``options`` to ``av_hwdevice_ctx_create``), so the caller opens from a thread where torch's
    context for ``device_index`` is current (``_use_torch_context``). Not ``primary_ctx=1``, which PyAV
    sets by default for ``is_hw_owned``: FFmpeg then asks the primary context for
    CU_CTX_SCHED_BLOCKING_SYNC and, since torch made it active with other flags first (the model loads
    before the source opens), refuses with ENOTSUP ("Primary context already active with incompatible
    flags"). The two options are exclusive (EINVAL), so primary_ctx is turned off explicitly.
    """
    from av.codec.hwaccel import HWAccel

    # ``device`` is the CUDA ordinal as a string (PyAV's HWAccel docstring): the model's GPU, so that
    # DLPack frames are on the device the processor runs on.
    return HWAccel(device_type="cuda", device=str(device_index), allow_software_fallback=True,
                   options=dict(NVDEC_CONTEXT_OPTIONS), is_hw_owned=keep_on_gpu)


# av_hwdevice_ctx_create options for CUDA: share the CUDA context current on the opening thread (torch's).
NVDEC_CONTEXT_OPTIONS = {"primary_ctx": "0", "current_ctx": "1"}


def _use_torch_context(device_index: int) -> None:
    """Make torch's (primary) CUDA context for ``device_index`` current on this thread, for ``current_ctx``."""
    import torch

    torch.cuda.set_device(device_index)
    torch.cuda.synchronize(device_index)  # a runtime call on this thread: the context is now current here


def wait_for_decoder(stream: object | None, device: object) -> None:
    """Make ``stream`` (the processor's CUDA stream) wait for FFmpeg's work on its decoded frames.

    FFmpeg's CUDA device has no stream of its own (``hwctx->stream = NULL``, hwcontext_cuda.c), so NVDEC's
    copies run on the legacy default stream, torch's ``default_stream``. An event wait orders our kernels
    after them on the GPU; the host does not block (no device-wide ``synchronize`` per frame). No-op
    without a stream (CPU processors).
    """
    if stream is None:
        return
    import torch

    stream.wait_stream(torch.cuda.default_stream(device))  # type: ignore[attr-defined]


# CUDA sw formats PyAV exports through DLPack that also have a packed layout (stylize_video.pipeline.io.planes).
DLPACK_FORMATS = ("nv12", "p010le")


def dlpack_planes(frame: av.VideoFrame) -> list:
    """CUDA frame planes as torch tensors (zero-copy): [(H, W), (H/2, W/2, 2)], uint8 or uint16 (P010).

    Raises where PyAV/FFmpeg cannot export them, or where they would not match the frame's packed
    layout (other sw formats, odd sizes: PyAV gives H//2 chroma rows where the layout has ceil(H/2)).
    The capsule is taken with ``__dlpack__()`` and no stream: ``torch.from_dlpack(plane)`` passes the
    current stream, which PyAV refuses for CUDA frames. FFmpeg wrote the frame on its own stream, so
    the caller orders its work after FFmpeg's (``wait_for_decoder``) before the planes are used.
    """
    import torch

    if frame.format.name == "cuda":
        sw = frame.sw_format.name if frame.sw_format is not None else None
        if sw not in DLPACK_FORMATS:
            raise ValueError(f"CUDA frames in {sw} are not imported via DLPack (only {', '.join(DLPACK_FORMATS)})")
        if frame.width % 2 or frame.height % 2:
            raise ValueError(f"odd frame size {frame.width}x{frame.height}: DLPack chroma planes would be cropped")
    return [torch.from_dlpack(p.__dlpack__()) for p in frame.planes]


class FileSource:
    """Decode one file's video stream with PyAV (``choose_video_stream``: FFmpeg's choice or
    ``options.video_stream``), deinterlaced where flagged (``options.deinterlace``); copy its audio and
    subtitle streams and attached pictures. Damage is counted in ``stats.damage`` (see
    ``stylize_video.pipeline.io.damage``) and never ends the run by itself."""

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
        _use_torch_context(index)
        self._open("nvdec-dlpack", _make_hwaccel(True, index))
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
        self.container.close()
        self.stats = SourceStats()
        warnings.warn(f"--hwdec: {reason}; NVDEC frames are downloaded instead", stacklevel=3)
        self._open("nvdec-download", _make_hwaccel(False, index))

    def _interlaced_to_cpu(self) -> bool:
        """Interlaced input to deinterlace: reopened for CPU decoding (bwdif/yadif take CPU frames)."""
        if not (self.info.interlaced and self.options.deinterlace.filter):
            return False
        self.container.close()
        self.stats = SourceStats()
        warnings.warn("--hwdec: interlaced input is decoded on the CPU so that it can be deinterlaced "
                      "(pass --deinterlace off to decode it with NVDEC)", stacklevel=3)
        self._open("cpu (interlaced input)", None)
        return True

    def _open(self, decode_path: str, hwaccel: object | None) -> None:
        self.container = _open_input(self.path, hwaccel)
        try:
            self._setup(decode_path)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, decode_path: str) -> None:
        c = self.container
        self.video = choose_video_stream(c, self.options.video_stream, str(self.path))
        self.video.thread_type = self.options.thread_type
        keep = (["audio"] if self.options.copy_audio else []) + (["subtitle"] if self.options.copy_subtitles else [])
        # cover art is copied where the output holds it (the sink drops it with a note elsewhere)
        self.passthrough = [s for s in c.streams if s.type in keep or s in attached_pictures(c)]
        self._decoder = VideoDecoder(self.video, self.stats, self.options.deinterlace, str(self.path))
        self._discontinuities = Discontinuities(c, str(self.path))
        if self.options.start:
            # Seek to the keyframe before start; frames before start are decoded and dropped.
            c.seek(int(self.options.start / self.video.time_base), stream=self.video, backward=True)
        elif self.options.seek_pts is not None:
            c.seek(self.options.seek_pts, stream=self.video, backward=True)
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
            interlaced=interlaced, frames=frames, start_pts=first.pts, codec=cc.name, decode_path=decode_path,
            stream=describe_video(self.video),
            deinterlace=f"{deint.filter} ({deint.rate} rate)" if deint.filter and (interlaced or self._decoder.deinterlacer.used)
            else None,
        )

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
        """(keep, past_end) for a time in seconds."""
        o = self.options
        if t is None:
            return True, False
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
        for packet in self._demux():
            if self._stop:
                return
            self._discontinuities.apply(packet)
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
            keep, past_end = self._in_window(frame.time) if self.options.pts_window is None \
                else self._in_pts_window(frame.pts)
            if past_end:
                break
            if not keep:
                continue
            self.stats.decoded += 1
            yield from self._release(held, frame.time)
            yield VideoItem(frame, index)
            index += 1
            if self.options.max_frames and index >= self.options.max_frames:
                yield from self._release(held, _end_time(frame, self.video))
                return
        yield from self._release(held, None)

    def _demux(self) -> Iterator[av.Packet]:
        """Packets of the video and pass-through streams (``demux_packets``)."""
        return demux_packets(self.container, [self.video, *self.passthrough], self.stats, str(self.path))

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
        self.container.close()
