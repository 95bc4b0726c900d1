"""The ``Source`` protocol and what a source hands over: ``StreamInfo`` (set up before the first frame),
``VideoItem`` (a decoded frame) and ``PacketItem`` (a packet to copy through), ``SourceStats`` (counts, damage
per stream), and ``FileSourceOptions`` (what part of a file, which streams, how it is decoded).

``stylize_video.pipeline.io.source.FileSource`` implements it for files, ``stylize_video.pipeline.live.source``
for cameras, network streams and stdin; the ``Runner`` takes any of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, runtime_checkable

import av
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions


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
    # earliest timestamp of what is handed over (first frame, pass-through streams' starts), seconds; None: unknown
    start: Fraction | None = None
    # input time that becomes 0 on output (``--start``: the output starts at 0, as ``ffmpeg -ss T -i IN`` gives);
    # None: the input timestamps are kept (a whole file, a ``stylize-batch`` segment)
    origin: Fraction | None = None
    codec: str = ""
    decode_path: str = "cpu"  # "cpu" | "nvdec-download" | "nvdec-dlpack"
    stream: str = ""  # which input stream is processed, e.g. "#0 (h264 1920x1080, default)"
    deinterlace: str | None = None  # "bwdif (frame rate)" when frames are deinterlaced, None when not
    field_order: int = 1  # AVFieldOrder of the decoded frames (2..5 interlaced: TT, BB, TB, BT; 1 progressive)


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
    start: float | None = None  # seconds from the input's start (FFmpeg's start_time), as `ffmpeg -ss`
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
