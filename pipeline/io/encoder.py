"""Encoder settings: ``EncoderOptions`` (what the user asked), ``parse_bitrate``, and ``choose_pix_fmt``, the pixel
format an encoder gets for an input (chroma format and 10-bit depth kept where the codec stores them; odd
sizes padded to even 4:2:0, warned; an asked format checked against the encoder and the size).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.containers import check_pix_fmt_name, check_size_fits, subsampling

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
    candidates = []
    if depth > 8:
        candidates.append(f"{base}10le")
        if base == "yuv420p":
            candidates.append(TEN_BIT.get(codec, "yuv420p10le"))
    candidates.append(base)
    if base != "yuv420p":
        candidates.append("yuv420p")
    chosen = next((c for c in candidates if not supported or c in supported), "nv12" if "nv12" in supported else None)
    if chosen is None:
        raise StylizeError(f"encoder {codec} takes none of {', '.join(candidates)} for a {width}x{height} {in_fmt} "
                           "input; pass --pix-fmt")
    deep = chosen.endswith(("10le", "p010le"))
    if depth > 8 and not deep:
        warnings.warn(f"encoder {codec} cannot write 10-bit; writing 8-bit {chosen}", stacklevel=2)
    sx, sy = subsampling(chosen)
    if (width % 2 and sx) or (height % 2 and sy):
        w2, h2 = width + (width % 2 and sx), height + (height % 2 and sy)
        kind = "4:2:0, what players expect" if (sx, sy) == (1, 1) else "4:2:2" if (sx, sy) == (1, 0) else "subsampled"
        exact = "yuv444p10le" if deep and (not supported or "yuv444p10le" in supported) else "yuv444p"
        warnings.warn(f"odd frame size {width}x{height}: {chosen} ({kind}) needs even sizes, so the output is "
                      f"{w2}x{h2}, the last column/row repeated; --pix-fmt {exact} keeps {width}x{height} exactly "
                      "(4:4:4, which browsers and phones do not play)", stacklevel=2)
    return chosen
