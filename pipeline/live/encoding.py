"""Low-latency encoder settings for live outputs: no B-frames, no lookahead, short GOP.

x264 ``tune=zerolatency`` = bframes 0, rc-lookahead 0, sync-lookahead 0, sliced threads, no mb-tree.
NVENC: ``preset=p1 tune=ull zerolatency=1 delay=0 rc-lookahead=0`` (option names checked against the
encoders in PyAV's FFmpeg). A short GOP lets a receiver that joins late (OBS) start within ``gop_seconds``.
The result is an ordinary ``EncoderOptions``: the encoding itself is ``stylize_video.pipeline.io.sink.EncodingSink``'s.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.sink import EncoderOptions, parse_bitrate

# Codec -> private options for the lowest encode latency (user --preset / --crf override them).
LOW_LATENCY_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "tune": "zerolatency"},
    "libx265": {"preset": "ultrafast", "tune": "zerolatency"},
    "h264_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0", "rc-lookahead": "0"},
    "hevc_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0", "rc-lookahead": "0"},
}
# Codecs FLV/RTMP carries in practice (H.264 only).
_FLV_CODECS = frozenset({"libx264", "h264_nvenc"})
AUTO = "auto"


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


def pick_codec(codec: str | None, *, prefer_gpu: bool, container_format: str | None = None) -> str:
    """Resolve ``codec`` (None / "auto": h264_nvenc when ``prefer_gpu`` and it opens here, else libx264)."""
    if codec in (None, AUTO):
        codec = "h264_nvenc" if prefer_gpu and encoder_opens("h264_nvenc") else "libx264"
    elif not encoder_opens(codec):
        raise StylizeError(f"encoder {codec!r} is not available or cannot open on this machine "
                           "(NVENC needs an NVIDIA GPU with video encoders; H100/A100 have none)")
    if container_format == "flv" and codec not in _FLV_CODECS:
        raise StylizeError(f"FLV/RTMP carries H.264 only; {codec!r} cannot be sent there")
    return codec


def live_encoder(encoder: EncoderOptions, *, rate: float, gop_seconds: float = 1.0) -> EncoderOptions:
    """``encoder`` (codec already resolved) plus the low-latency preset, ``bf=0`` and a GOP of ``gop_seconds``.

    A bit rate gets a one-second VBV (``maxrate = bufsize``), which keeps UDP/SRT receivers from overflowing.
    The user's ``--preset`` / ``--crf`` / ``--gop`` and extra options win over the preset's values.
    """
    extra = {**LOW_LATENCY_OPTIONS.get(encoder.codec, {}), "bf": "0"}
    if encoder.bitrate:
        bits = str(parse_bitrate(encoder.bitrate))
        extra |= {"maxrate": bits, "bufsize": bits}
    gop = encoder.gop or max(1, round(rate * gop_seconds))
    return dataclasses.replace(encoder, gop=gop, extra={**extra, **encoder.extra})
