"""Sinks: where processed frames (and copied packets) go.

A ``Sink`` is opened with the output ``VideoSpec`` and the input streams to copy, receives software
``av.VideoFrame``s carrying the input PTS and packets of the copied streams (routed by
``stylize_video.pipeline.io.passthrough``: copied, text subtitles re-encoded, or dropped with a warning), and is closed exactly
once: ``close()`` on success, ``close(interrupted=True)`` on Ctrl-C (flush, keep what was written),
``abort()`` on error. ``FileSink`` encodes with PyAV into a temporary file that is renamed at the
end: a file under the final name is always complete; a Ctrl-C leaves ``<name>.partial.<ext>``.
``stylize_video.pipeline.live.sinks`` adds network / stdout / virtual-camera sinks on the same protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import av
from stylize_video.errors import StylizeError
from stylize_video.outfiles import fit_name
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.io.containers import (
    FALLBACK_VIDEO_CODEC,
    check_codec_fits,
    check_pix_fmt_name,
    check_size_fits,
    codec_defaults,
    default_video_codec,
)
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.muxguard import PacketGuard
from stylize_video.pipeline.io.oddsize import pad_frame, padded_size
from stylize_video.pipeline.io.passthrough import Route, route_stream
from stylize_video.pipeline.io.paths import ffmpeg_path, remove_stale_temps, temp_name

# output extension -> FFmpeg muxer
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
# codec families that can store 10-bit in the formats we produce
TEN_BIT: dict[str, str] = {"libx264": "yuv420p10le", "libx265": "yuv420p10le", "libsvtav1": "yuv420p10le",
                           "libaom-av1": "yuv420p10le", "libvpx-vp9": "yuv420p10le", "hevc_nvenc": "p010le",
                           "av1_nvenc": "p010le", "ffv1": "yuv420p10le"}


@dataclass
class EncoderOptions:
    codec: str | None = None  # None: the output container's default (containers.DEFAULT_VIDEO_CODEC)
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None  # e.g. "8M"
    pix_fmt: str | None = None  # None: follow the input (chroma format, 10-bit where possible)
    gop: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


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


def parse_bitrate(text: str) -> int:
    """``"8M"`` -> 8_000_000, ``"2500k"`` -> 2_500_000; plain numbers are bits/s."""
    units = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
    t = text.strip().lower()
    try:
        value = int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(float(t))
    except ValueError:
        raise StylizeError(f"--bitrate {text!r} is not a bit rate like 8M or 2500k") from None
    if value <= 0:
        raise StylizeError(f"--bitrate must be > 0, got {text!r}")
    return value


def partial_name(path: Path) -> Path:
    """``out.mp4`` -> ``out.partial.mp4`` (the stem shortened, with a hash, where that would pass NAME_MAX)."""
    return path.with_name(fit_name(path.stem, after=f".partial{path.suffix}", folder=path.parent))


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


def choose_pix_fmt(codec: str, in_fmt: str, width: int, height: int, asked: str | None) -> str:
    """Encoder pixel format: the asked one, else the input's chroma format and depth when the codec has it.

    10-bit input -> 10-bit output where the codec stores it (warned otherwise); odd sizes can't be
    4:2:0 / 4:2:2 in any encoder: they stay 4:2:0 / 4:2:2 and the sink pads them to even
    (``stylize_video.pipeline.io.oddsize``, warned), while an *asked* subsampled format at an odd size is
    refused here, before any work. ``--pix-fmt yuv444p`` keeps an odd size exactly.
    """
    try:
        supported = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    except (ValueError, av.error.FFmpegError):
        raise StylizeError(f"encoder {codec!r} is not available in this FFmpeg") from None
    if asked:
        check_pix_fmt_name(asked)
        if supported and asked not in supported:
            raise StylizeError(f"encoder {codec} does not take --pix-fmt {asked}; it takes {', '.join(supported)}")
        check_size_fits(asked, width, height)
        return asked
    from stylize_video.pipeline.io.planes import FORMATS

    depth, sx, sy = FORMATS.get(in_fmt, (8, 1, 1, False, False))[:3]
    base = {(1, 1): "yuv420p", (1, 0): "yuv422p", (0, 0): "yuv444p", (0, 1): "yuv444p"}[(sx, sy)]
    if (width % 2 and sx) or (height % 2 and sy):
        w2, h2 = width + (width % 2 and sx), height + (height % 2 and sy)
        warnings.warn(f"odd frame size {width}x{height}: {base} (what players expect) needs even sizes, so the "
                      f"output is {w2}x{h2}, the last column/row repeated; --pix-fmt yuv444p keeps {width}x{height} "
                      "exactly (4:4:4, which browsers and phones do not play)", stacklevel=2)
    candidates = []
    if depth > 8:
        candidates.append(f"{base}10le")
        if base == "yuv420p":
            candidates.append(TEN_BIT.get(codec, "yuv420p10le"))
    candidates.append(base)
    if base != "yuv420p":
        candidates.append("yuv420p")
    for cand in candidates:
        if not supported or cand in supported:
            if depth > 8 and not cand.endswith(("10le", "p010le")):
                warnings.warn(f"encoder {codec} cannot write 10-bit; writing 8-bit {cand}", stacklevel=2)
            return cand
    if "nv12" in supported:
        return "nv12"
    raise StylizeError(f"encoder {codec} takes none of {', '.join(candidates)} for a {width}x{height} {in_fmt} input; "
                       f"pass --pix-fmt")


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
        self.container: av.container.OutputContainer | None = None
        self._map: dict[int, Route] = {}  # input stream index -> output
        self._sources: dict[int, av.stream.Stream] = {}  # input stream index -> input stream
        self.frames_written = 0
        self.packets_copied = 0
        self.damage = DamageLog()  # pass-through packets left out, per input stream (muxguard)
        self._guard: PacketGuard | None = None
        self._pad: tuple[int, int] | None = None  # odd size in a subsampled format: encoded padded to this

    def _open_container(self) -> av.container.OutputContainer:
        raise NotImplementedError

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        """The encoder pixel format for frames of ``in_fmt`` at this size (see ``choose_pix_fmt``)."""
        return choose_pix_fmt(self.encoder.codec, in_fmt, width, height, self.encoder.pix_fmt)

    def open(self, spec: VideoSpec, passthrough: list[av.stream.Stream]) -> None:
        self.container = self._open_container()
        self._guard = PacketGuard(self.container, self.damage, self.label)
        try:
            self._add_video(spec)
            for s in passthrough:  # copied, re-encoded (text subtitles, audio) or dropped with a warning
                route = route_stream(self.container, s, self.label, self.damage)
                self._sources[s.index] = s
                if route is not None:
                    self._map[s.index] = route
        except BaseException:
            self.abort()
            raise

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
        try:  # open now: a missing GPU encoder is reported as such, not as a muxing error later
            cc.open()
        except av.error.FFmpegError as exc:
            hint = ("; NVENC needs an NVIDIA GPU with a video encoder (data-centre H100/H200 have none): "
                    "use --codec libx264/libx265") if "nvenc" in enc.codec else ""
            raise StylizeError(f"cannot open encoder {enc.codec} ({exc.strerror or exc}){hint}") from None
        self.video = stream
        self.spec = spec

    def write_frame(self, frame: av.VideoFrame) -> None:
        if self._pad is not None:
            frame = pad_frame(frame, *self._pad)
        c = self.spec.colour
        frame.colorspace, frame.color_range = c.colorspace, c.range_code
        try:
            packets = self.video.encode(frame)
        except av.error.FFmpegError as exc:
            raise StylizeError(f"encoder {self.encoder.codec} failed: {exc}") from None
        self._mux(packets)
        self.frames_written += 1

    def write_packet(self, packet: av.Packet) -> None:
        route = self._map.get(packet.stream.index)
        if route is None:
            return
        source = packet.stream
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
            self.container.close()
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
        final = partial_name(self.path) if interrupted else self.path
        os.replace(self.tmp, final)
        return final

    def abort(self) -> None:
        super().abort()
        self.tmp.unlink(missing_ok=True)


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
