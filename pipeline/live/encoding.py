"""Low-latency encoder presets for live outputs: no B-frames, no lookahead, short GOP.

x264 ``tune=zerolatency`` = bframes 0, rc-lookahead 0, sync-lookahead 0, sliced threads, no mb-tree.
NVENC: ``preset=p1 tune=ull zerolatency=1 delay=0 rc-lookahead=0`` (option names checked against the
encoders in PyAV's FFmpeg). A short GOP lets a receiver that joins late (OBS) start within ``gop_seconds``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.reformatter import ColorRange

from pipeline.live.frames import matrix_for_height
from train.errors import StylizeError

# Codec -> private options for the lowest encode latency.
LOW_LATENCY_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "tune": "zerolatency"},
    "libx265": {"preset": "ultrafast", "tune": "zerolatency"},
    "h264_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0", "rc-lookahead": "0"},
    "hevc_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0", "rc-lookahead": "0"},
}
# Containers that can carry each codec on a live output (FLV/RTMP is H.264 only in practice).
_FLV_CODECS = frozenset({"libx264", "h264_nvenc"})
# Millisecond timestamps: exact for VFR sources and fine for every live muxer.
TIME_BASE = Fraction(1, 1000)


@dataclass
class LiveEncoderConfig:
    """``codec="auto"``: h264_nvenc when ``prefer_gpu`` and it opens here, else libx264."""

    codec: str = "auto"
    bitrate: int | None = None  # bits/s; None = quality mode (x264 crf 23 / nvenc default)
    gop_seconds: float = 1.0
    gop_frames: int | None = None  # overrides gop_seconds
    pix_fmt: str = "yuv420p"
    extra_options: dict[str, str] | None = None


@functools.cache
def encoder_opens(codec: str) -> bool:
    """Whether ``codec`` exists *and* opens here (NVENC is listed in PyAV's wheels even with no NVIDIA GPU)."""
    if codec not in av.codecs_available:
        return False
    try:
        ctx = av.codec.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 30)
        ctx.open()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def pick_codec(config: LiveEncoderConfig, *, prefer_gpu: bool, container_format: str | None = None) -> str:
    """Resolve ``config.codec``; raise ``StylizeError`` for an encoder that cannot work here."""
    codec = config.codec
    if codec == "auto":
        codec = "h264_nvenc" if prefer_gpu and encoder_opens("h264_nvenc") else "libx264"
    elif not encoder_opens(codec):
        raise StylizeError(f"encoder {codec!r} is not available or cannot open on this machine "
                           "(NVENC needs an NVIDIA GPU with video encoders; H100/A100 have none)")
    if container_format == "flv" and codec not in _FLV_CODECS:
        raise StylizeError(f"FLV/RTMP carries H.264 only; {codec!r} cannot be sent there")
    return codec


def encoder_options(codec: str, fps: float, config: LiveEncoderConfig) -> dict[str, str]:
    """Codec options: the low-latency preset, no B-frames, GOP of ``gop_seconds``, optional CBR-ish bitrate."""
    gop = config.gop_frames or max(1, round(fps * config.gop_seconds))
    opts = {**LOW_LATENCY_OPTIONS.get(codec, {}), "bf": "0", "g": str(gop)}
    if config.bitrate:
        # VBV of one second bounds the burst size, which keeps UDP/SRT receivers from overflowing.
        opts.update({"b": str(config.bitrate), "maxrate": str(config.bitrate), "bufsize": str(config.bitrate)})
    opts.update(config.extra_options or {})
    return opts


def add_live_stream(container: av.container.OutputContainer, *, width: int, height: int, fps: float,
                    config: LiveEncoderConfig, prefer_gpu: bool = False) -> av.video.stream.VideoStream:
    """Add a low-latency video stream (even width/height required by yuv420p) with millisecond timestamps."""
    fmt_name = container.format.name.split(",")[0] if container.format else None
    codec = pick_codec(config, prefer_gpu=prefer_gpu, container_format=fmt_name)
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
    stream = container.add_stream(codec, rate=rate, options=encoder_options(codec, float(rate), config))
    stream.width, stream.height, stream.pix_fmt = width, height, config.pix_fmt
    stream.time_base = TIME_BASE
    cc = stream.codec_context
    cc.time_base = TIME_BASE
    # Colour tags in the bitstream (VUI), matching what rgb_to_frame converts with.
    tags = matrix_for_height(height)
    cc.colorspace, cc.color_primaries, cc.color_trc = tags["tag"], tags["primaries"], tags["trc"]
    cc.color_range = int(ColorRange.MPEG)
    return stream
