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
    corrupt: int = 0  # packets that failed to decode or frames flagged corrupt, skipped
    passthrough_packets: int = 0


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


def _open_input(path: Path, hwaccel: object | None) -> av.container.InputContainer:
    if not path.exists():
        raise StylizeError(f"input not found: {path}")
    if not path.is_file():
        raise StylizeError(f"input is not a file: {path}")
    try:
        return av.open(str(path), "r", hwaccel=hwaccel) if hwaccel is not None else av.open(str(path), "r")
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
    """Decode one file's first video stream with PyAV; copy its audio and subtitle streams."""

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

    def _open(self, decode_path: str, hwaccel: object | None) -> None:
        self.container = _open_input(self.path, hwaccel)
        try:
            self._setup(decode_path)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, decode_path: str) -> None:
        c = self.container
        if not c.streams.video:
            raise StylizeError(f"{self.path} has no video stream")
        self.video = c.streams.video[0]
        self.video.thread_type = self.options.thread_type
        keep = (["audio"] if self.options.copy_audio else []) + (["subtitle"] if self.options.copy_subtitles else [])
        self.passthrough = [s for s in c.streams if s.type in keep]
        if self.options.start:
            # Seek to the keyframe before start; frames before start are decoded and dropped.
            c.seek(int(self.options.start / self.video.time_base), stream=self.video, backward=True)
        self._it = self._items()
        self._pending: list[VideoItem | PacketItem] = []
        first = None
        for item in self._it:
            self._pending.append(item)
            if isinstance(item, VideoItem):
                first = item.frame
                break
        if first is None:
            raise StylizeError(f"{self.path}: no decodable video frames"
                               + (f" ({self.stats.corrupt} corrupt packets)" if self.stats.corrupt else ""))
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
        if frames and self.options.duration and rate:
            frames = min(frames, math.ceil(self.options.duration * float(rate)))
        if frames and self.options.max_frames:
            frames = min(frames, self.options.max_frames)
        self.info = StreamInfo(
            width=first.width, height=first.height, pix_fmt=fmt, time_base=self.video.time_base,
            rate=rate, colour=colour_info_of(first, cc), rotation=round(first.rotation or 0),
            interlaced=bool(first.interlaced_frame) or cc.field_order not in (0, 1),
            frames=frames, start_pts=first.pts, codec=cc.name, decode_path=decode_path,
        )

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

    def _items(self) -> Iterator[VideoItem | PacketItem]:
        index = 0
        # With --max-frames the end is only known when the last frame comes out of the decoder, which runs
        # frames behind the demuxer (frame threads): pass-through packets wait for the video to reach them,
        # so none past the last frame's end gets through. (--duration's end is known upfront.)
        held: deque[tuple[float, av.Packet]] = deque()
        hold = bool(self.options.max_frames)
        for packet in self._demux():
            if self._stop:
                return
            if packet.stream.type != "video":
                if packet.pts is None and packet.dts is None:
                    continue  # flush packets of the demuxer
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
            try:
                frames = packet.decode()
            except av.error.FFmpegError:  # damaged packet: skip it, count it, keep going
                self.stats.corrupt += 1
                continue
            for frame in frames:
                if frame.is_corrupt:
                    self.stats.corrupt += 1
                    continue
                keep, past_end = self._in_window(frame.time)
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
            else:
                continue
            break  # past --duration's end
        yield from self._release(held, None)

    def _demux(self) -> Iterator[av.Packet]:
        """Packets of the video and pass-through streams; a read error past the header ends the input."""
        it = self.container.demux([self.video, *self.passthrough])
        while True:
            try:
                packet = next(it)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self.stats.corrupt += 1
                warnings.warn(f"{self.path}: read error, stopping early ({exc.strerror or exc})", stacklevel=2)
                return
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
        self.container.close()
