"""Sinks: where processed frames (and copied packets) go.

A ``Sink`` is opened with the output ``VideoSpec`` and the input streams to copy, receives software
``av.VideoFrame``s carrying the input PTS and packets of the copied streams (routed by
``stylize_video.pipeline.io.passthrough``: copied, text subtitles re-encoded, or dropped with a warning), and is closed exactly
once: ``close()`` on success, ``close(interrupted=True)`` on Ctrl-C (flush, keep what was written),
``abort()`` on error. ``FileSink`` encodes with PyAV into a temporary file that is renamed at the
end: a file under the final name is always complete; a Ctrl-C leaves ``<name>.partial.<ext>`` (or
``<name>.partial-N.<ext>``: an existing file is never replaced without ``overwrite``).
``stylize_video.pipeline.live.sinks`` adds network / stdout / virtual-camera sinks on the same protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import av
from stylize_video.errors import StylizeError
from stylize_video.outfiles import partial_name, rename_partial
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.io.containers import (
    FALLBACK_VIDEO_CODEC,
    check_codec_fits,
    check_crf,
    check_pix_fmt_name,
    check_preset,
    codec_defaults,
    default_video_codec,
)
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.encoder import EncoderOptions, choose_pix_fmt, parse_bitrate
from stylize_video.pipeline.io.fflog import ffmpeg_errors
from stylize_video.pipeline.io.fields import INTERLACED_ORDERS, FieldFlags
from stylize_video.pipeline.io.muxguard import PacketGuard
from stylize_video.pipeline.io.oddsize import pad_frame, padded_size
from stylize_video.pipeline.io.passthrough import Route, route_stream
from stylize_video.pipeline.io.paths import ffmpeg_path, remove_stale_temps, temp_name

_TS_NEGATIVE = 0x40000  # AVFMT_TS_NEGATIVE (libavformat/avformat.h): the muxer writes negative timestamps
# the encoder settings live in stylize_video.pipeline.io.encoder; importable from here as before
__all__ = ["CONTAINERS", "EncoderOptions", "EncodingSink", "FileSink", "Sink", "VideoSpec", "check_output",
           "choose_pix_fmt", "output_shift", "parse_bitrate", "partial_name", "start_shift"]
# output extension -> FFmpeg muxer
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}


@dataclass
class VideoSpec:
    """What the sink must produce."""

    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None
    colour: ColourInfo
    rotation: int = 0  # display-matrix rotation to write (0: none)
    start: Fraction | None = None  # earliest input timestamp of the frames and packets to come, seconds (None: unknown)
    origin: Fraction | None = None  # input time written as 0 (--start), seconds; None: input timestamps kept
    field_order: int | None = None  # AVFieldOrder to keep (interlaced input not deinterlaced); None: progressive


@runtime_checkable
class Sink(Protocol):
    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        """Pixel format this sink wants the processor to produce for a ``width`` x ``height`` ``in_fmt`` input."""

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None: ...

    def write_frame(self, frame: av.VideoFrame) -> None: ...

    def write_packet(self, packet: av.Packet) -> None: ...

    def close(self, interrupted: bool = False) -> Path | str | None:
        """Flush and finish; returns where the output is (None if nothing is kept)."""

    def abort(self) -> None:
        """Drop everything written (error path). Idempotent."""


def check_output(path: Path, overwrite: bool, format: str | None = None) -> str:
    """Validate the output path before any work; returns the muxer name (``format`` overrides the extension)."""
    fmt = format or CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise StylizeError(f"{path}: unknown output container {path.suffix!r}; use one of {', '.join(CONTAINERS)}")
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:  # a name the file system refuses (too long, ...)
        raise StylizeError(f"cannot write {path}: {exc.strerror or exc}") from None
    if exists and not overwrite:
        raise StylizeError(f"{path} exists; pass --overwrite to replace it")
    if is_dir:
        raise StylizeError(f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StylizeError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StylizeError(f"output folder is not writable: {parent}")
    return fmt


class EncodingSink:
    """Encoder + muxer with PyAV over a container that a subclass opens (file, URL, pipe, socket).

    Subclasses implement ``_open_container`` and decide in ``close`` / ``abort`` what becomes of the output.
    """

    label: str = "output"  # what messages call the output
    encode_path = "cpu"
    # Encoder threading (AVCodecContext.thread_type, read by libx264/libx265 at open). PyAV defaults every
    # codec context it makes to SLICE, and libx264 then runs sliced threads: lowest latency, the right choice
    # for live outputs (kept here), but about half the throughput of frame threads (720p, 2 cores:
    # ultrafast 149 -> 299 fps). ``FileSink`` uses FRAME.
    thread_type: str = "SLICE"

    def __init__(self, encoder: EncoderOptions | None = None) -> None:
        self.encoder = encoder or EncoderOptions()
        if self.encoder.codec is None:
            self.encoder = dataclasses.replace(self.encoder, codec=FALLBACK_VIDEO_CODEC)
        check_crf(self.encoder.codec, self.encoder.crf)  # before the model loads (x264 would clamp it silently)
        self.container: av.container.OutputContainer | None = None
        self._map: dict[int, Route] = {}  # input stream index -> output
        self._sources: dict[int, av.stream.Stream] = {}  # input stream index -> input stream
        self.frames_written = 0
        self.packets_copied = 0
        self.damage = DamageLog()  # pass-through packets left out, per input stream (muxguard)
        self._guard: PacketGuard | None = None
        self._pad: tuple[int, int] | None = None  # odd size in a subsampled format: encoded padded to this
        self._shift = Fraction(0)  # seconds added to every timestamp (--start; negative starts in MP4/MOV)
        self._fields: FieldFlags | None = None  # interlaced output: frames flagged with the field order

    def _open_container(self) -> av.container.OutputContainer:
        raise NotImplementedError

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        """The encoder pixel format for frames of ``in_fmt`` at this size (see ``choose_pix_fmt``)."""
        return choose_pix_fmt(self.encoder.codec, in_fmt, width, height, self.encoder.pix_fmt)

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None:
        self.container = self._open_container()
        self._guard = PacketGuard(self.container, self.damage, self.label)
        self._shift = output_shift(self.container, spec.start, spec.origin)
        try:
            self._add_video(spec)
            for s in passthrough:  # copied, re-encoded (text subtitles, audio) or dropped with a warning
                route = route_stream(self.container, s, self.label, self.damage)
                self._sources[s.index] = s
                if route is not None:
                    self._map[s.index] = route
            self._write_header()
        except BaseException:
            self.abort()
            raise

    def _write_header(self) -> None:
        """Write the header now, before any frame: a stream the muxer refuses there (a codec it holds only in
        another mode, a parameter it cannot store) fails here with FFmpeg's reason, not at the first packet
        (where a copied audio packet took the blame)."""
        with ffmpeg_errors() as log:
            try:
                self.container.start_encoding()
            except (OSError, av.error.FFmpegError) as exc:
                raise StylizeError(f"cannot write {self.label}: {log.reason(exc)}") from None

    def _add_video(self, spec: VideoSpec) -> None:
        enc = self.encoder
        options = codec_defaults(enc.codec, enc.crf, enc.bitrate) | dict(enc.extra)
        if enc.crf is not None:
            options["crf"] = str(enc.crf)
        if enc.preset:
            options["preset"] = enc.preset
        try:
            stream = self.container.add_stream(enc.codec, rate=spec.rate or Fraction(25), options=options)
        except (ValueError, av.error.FFmpegError) as exc:
            raise StylizeError(f"cannot use encoder {enc.codec}: {exc}") from None
        if enc.codec.endswith(("_nvenc", "_cuda")):
            self.encode_path = "nvenc"
        width, height = padded_size(spec.pix_fmt, spec.width, spec.height)
        self._pad = (width, height) if (width, height) != (spec.width, spec.height) else None
        stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
        stream.time_base = spec.time_base
        cc = stream.codec_context
        cc.time_base = spec.time_base
        c = spec.colour
        cc.colorspace, cc.color_range = c.colorspace, c.range_code
        cc.color_primaries, cc.color_trc = c.primaries, c.trc
        if enc.bitrate:
            cc.bit_rate = parse_bitrate(enc.bitrate)
        if enc.gop:
            cc.gop_size = enc.gop
        if spec.rotation:
            stream.set_display_rotation(float(spec.rotation))
        cc.thread_type = self.thread_type
        if spec.field_order in INTERLACED_ORDERS:
            self._fields = FieldFlags(spec.field_order)
            self._fields.setup(cc, enc.codec)
        with ffmpeg_errors() as log:
            try:  # open now: a missing GPU encoder is reported as such, not as a muxing error later
                cc.open()
            except av.error.FFmpegError as exc:
                hint = ("; NVENC needs an NVIDIA GPU with a video encoder (data-centre H100/H200 have none): "
                        "use --codec libx264/libx265") if "nvenc" in enc.codec else ""
                raise StylizeError(f"cannot open encoder {enc.codec} for {width}x{height} {spec.pix_fmt} "
                                   f"({log.reason(exc)}){hint}") from None
        self.video = stream
        self.spec = spec

    def write_frame(self, frame: av.VideoFrame) -> None:
        if self._pad is not None:
            frame = pad_frame(frame, *self._pad)
        if self._fields is not None:
            frame = self._fields(frame)
        c = self.spec.colour
        frame.colorspace, frame.color_range = c.colorspace, c.range_code
        pts = frame.pts
        if self._shift and pts is not None and frame.time_base is not None:
            frame.pts = pts + _ticks(self._shift, frame.time_base)
        try:
            packets = self.video.encode(frame)
        except av.error.FFmpegError as exc:
            raise StylizeError(f"encoder {self.encoder.codec} failed: {exc}") from None
        finally:
            frame.pts = pts  # (the frame may go to other sinks too)
        self._mux(packets)
        self.frames_written += 1

    def write_packet(self, packet: av.Packet) -> None:
        route = self._map.get(packet.stream.index)
        if route is None:
            return
        source = packet.stream
        if self._shift and packet.time_base is not None:
            ticks = _ticks(self._shift, packet.time_base)
            packet.pts = packet.pts + ticks if packet.pts is not None else None
            packet.dts = packet.dts + ticks if packet.dts is not None else None
        for out in route.packets(packet):
            self._mux_passthrough(out, source)

    def _mux_passthrough(self, packet: av.Packet, source: av.stream.Stream) -> None:
        """Mux a copied / re-encoded packet; one the muxer would refuse (damaged input) is left out, counted."""
        try:
            if self._guard.mux(packet, source):
                self.packets_copied += 1
        except (OSError, av.error.FFmpegError) as exc:  # disk full, permission lost
            raise StylizeError(f"writing {self.label} failed: {getattr(exc, 'strerror', None) or exc}") from None

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self.container.mux(packets)
        except (OSError, av.error.FFmpegError) as exc:  # disk full, permission lost, non-monotonic timestamps
            raise StylizeError(f"writing {self.label} failed: {getattr(exc, 'strerror', None) or exc}") from None

    def _drain(self) -> None:
        """Mux what the encoder still holds (its lookahead)."""
        self._mux(self.video.encode(None))

    def _finish(self) -> bool:
        """Drain the encoder and close the container; False if nothing was open."""
        if self.container is None:
            return False
        try:
            self._drain()
            for index, route in self._map.items():  # and the audio re-encoders'
                for packet in route.flush():
                    self._mux_passthrough(packet, self._sources[index])
            with ffmpeg_errors() as log:
                try:  # the trailer: the muxer's last checks (MP4: the sample tables, channel layouts, ...)
                    self.container.close()
                except (OSError, av.error.FFmpegError) as exc:
                    raise StylizeError(f"finishing {self.label} failed: {log.reason(exc)}") from None
        except BaseException:
            self.abort()
            raise
        self.container = None
        return True

    def close(self, interrupted: bool = False) -> Path | str | None:
        self._finish()
        return self.label

    def abort(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):  # already broken; we only want it gone
                self.container.close()
            self.container = None


class FileSink(EncodingSink):
    """Encode to a file: temp name, atomic rename, ``.partial`` on interrupt. ``format`` overrides the extension.

    Frame threads: a file has no latency budget, and x264 gains ~2x over sliced threads. Thread counts stay
    FFmpeg's/x264's own (x264: 1.5 x cores); the decoder keeps FFmpeg's automatic count too: on 2 cores,
    H.264 decoding is ~5 % of x264 medium's work, so both share the cores through the OS scheduler.
    """

    thread_type = "FRAME"

    def __init__(self, path: str | os.PathLike[str], encoder: EncoderOptions | None = None,
                 overwrite: bool = False, format: str | None = None) -> None:
        self.path = Path(path)
        self.format = check_output(self.path, overwrite, format)
        encoder = encoder or EncoderOptions()
        if encoder.codec is None:  # the container's default: VP9 for WebM, H.264 elsewhere
            encoder = dataclasses.replace(encoder, codec=default_video_codec(self.format))
        super().__init__(encoder)
        self.label = str(self.path)
        self.overwrite = overwrite
        check_codec_fits(self.encoder.codec, self.format, self.label)
        check_preset(self.encoder.codec, self.encoder.preset)  # (--crf: checked by EncodingSink for every sink)
        if self.encoder.pix_fmt:
            check_pix_fmt_name(self.encoder.pix_fmt)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        remove_stale_temps(folder)  # left by killed runs
        self.tmp = temp_name(self.path)
        _try_create(self.tmp, self.path)  # a name the file system refuses fails now, before a model is loaded

    def _open_container(self) -> av.container.OutputContainer:
        try:
            return av.open(ffmpeg_path(self.tmp), "w", format=self.format)
        except (av.error.FFmpegError, OSError) as exc:
            raise StylizeError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None

    def close(self, interrupted: bool = False) -> Path | None:
        if not self._finish():
            return None
        if interrupted and self.frames_written == 0:
            self.tmp.unlink(missing_ok=True)
            return None
        if interrupted:  # (an existing file is never replaced without --overwrite: out.partial-2.mp4, ...)
            return rename_partial(self.tmp, self.path, overwrite=self.overwrite)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        super().abort()
        self.tmp.unlink(missing_ok=True)


def output_shift(container: av.container.OutputContainer, start: Fraction | None,
                 origin: Fraction | None) -> Fraction:
    """Seconds to add to every input timestamp: ``-origin`` (``--start``: the input time ``origin`` is written as
    0, every stream moved by the same amount, so A/V sync and frame spacing are kept, as ``ffmpeg -ss``
    does), plus :func:`start_shift` for what would still start below 0."""
    origin = origin or Fraction(0)
    return -origin + start_shift(container, None if start is None else start - origin)


def start_shift(container: av.container.OutputContainer, start: Fraction | None) -> Fraction:
    """Seconds to add to every timestamp so that the output starts at 0, for muxers that write negative
    timestamps as they are (MP4/MOV: ``AVFMT_TS_NEGATIVE``, where an edit list then hides every frame before 0);
    0 for a start >= 0 (timestamps are kept) and for the others (libavformat's ``avoid_negative_ts``
    default shifts them itself). ``ffmpeg`` starts its outputs at 0 the same way."""
    if start is None or start >= 0 or not container.format.flags & _TS_NEGATIVE:
        return Fraction(0)
    return -start


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    """``seconds`` in ``time_base`` ticks, rounded up (a shifted start never stays below 0)."""
    return -(-seconds // time_base)


def _try_create(tmp: Path, path: Path) -> None:
    """Create and remove ``tmp``: refused names (too long, read-only folder) fail before any work."""
    try:
        with open(tmp, "xb"):
            pass
    except FileExistsError:
        return  # ours from an earlier sink in this process; it is replaced when the output opens
    except OSError as exc:
        raise StylizeError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp.unlink(missing_ok=True)
