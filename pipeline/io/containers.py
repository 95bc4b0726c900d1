"""What each output container holds by default, and encoder settings refused before any work.

Video codec when ``--codec`` is not given: VP9 (libvpx-vp9) for WebM, which holds only VP8/VP9/AV1;
H.264 (libx264) everywhere else. VP9 without ``--crf``/``--bitrate`` runs in constant-quality mode
(``crf 31``, ``b:v 0``, as the WebM project recommends for files) with row multithreading, instead of
libvpx's 256 kbit/s default.

Audio that the output container cannot hold as it is (AAC in WebM, FLAC or Opus in MOV, ...) is
re-encoded with the first encoder in ``AUDIO_TARGETS`` the container takes, with a note — as ``ffmpeg``
does without ``-c:a copy`` — instead of being dropped.

``check_encoder`` refuses, with one line naming the constraint, what the encoder or muxer would only
refuse at the first frame ("Generic error in an external library"): a codec the container cannot
hold, an unknown pixel format, a pixel format the encoder does not take, and a chroma-subsampled
format (4:2:0, 4:2:2) at a size it cannot have (odd width / height).
"""

from __future__ import annotations

import io
import warnings

import av
from av.codec.context import CodecOption, OptionType
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.fflog import ffmpeg_errors

# muxer -> video encoder used when --codec is not given
DEFAULT_VIDEO_CODEC: dict[str, str] = {"webm": "libvpx-vp9"}
FALLBACK_VIDEO_CODEC = "libx264"
# muxer -> audio encoders to re-encode with, in order, when a stream cannot be copied
AUDIO_TARGETS: dict[str, tuple[str, ...]] = {
    "webm": ("libopus", "opus", "vorbis"), "matroska": ("libopus", "opus", "aac"),
    "mp4": ("aac",), "mov": ("aac",), "mpegts": ("aac",), "flv": ("aac",), "nut": ("libopus", "opus", "aac"),
}
# muxers that list what they hold (others, e.g. MPEG-TS, take any codec id and are not checked here)
_LISTING_MUXERS = ("mp4", "mov", "matroska", "webm")
# x264_preset_names (x264.h); x265 has the same list
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
_X26X = ("libx264", "libx264rgb", "libx265")
# CRF ranges the libraries clamp to (x264/x265: 51 for 8-bit; FFmpeg's option says 'up to FLT_MAX')
_CRF_MAX = {"libx264": 51, "libx264rgb": 51, "libx265": 51}
# what to suggest instead of a codec the container refuses
_SUGGESTED = {"webm": "libvpx-vp9 or libsvtav1", "mov": "libx264 or libx265"}
# encoders whose libraries print to stderr by themselves when opened (not silenced by FFmpeg's log level)
_LOUD_ENCODERS = ("libx265", "libsvtav1", "librav1e", "libkvazaar")


def default_video_codec(muxer: str) -> str:
    """The encoder for ``muxer`` when the user named none (available in this FFmpeg)."""
    codec = DEFAULT_VIDEO_CODEC.get(muxer, FALLBACK_VIDEO_CODEC)
    try:
        av.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        raise StylizeError(f"this FFmpeg has no {codec} encoder, the default for {muxer}; pass --codec") from None
    return codec


def codec_defaults(codec: str, crf: int | None, bitrate: str | None) -> dict[str, str]:
    """Encoder options that replace poor library defaults (only where the user set no rate control)."""
    if codec == "libvpx-vp9" and crf is None and bitrate is None:
        return {"crf": "31", "b": "0", "row-mt": "1", "cpu-used": "4"}
    return {}


def supported_codecs(muxer: str) -> set[str] | None:
    """Codec names ``muxer`` holds, or None when it does not list them (then it is not checked)."""
    if muxer not in _LISTING_MUXERS:
        return None
    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        return set(probe.supported_codecs)


def check_codec_fits(codec: str, muxer: str, label: str) -> None:
    """Refuse, before any work, a ``--codec`` that is no video encoder (``aac``) and one whose codec the output
    container cannot hold: not listed by the muxer (H.264 in WebM), or refused when it writes its header
    (VP9 in MOV: tried on a header of its own in memory, FFmpeg's reason in the message)."""
    try:
        found = av.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        raise StylizeError(f"encoder {codec!r} is not available in this FFmpeg") from None
    if found.type != "video":
        kind = {"subtitle": "subtitles"}.get(found.type, found.type)
        raise StylizeError(f"--codec {codec}: {codec} is not a video encoder (it encodes {kind}); "
                           "use e.g. --codec libx264, libx265 or libvpx-vp9")
    name = found.canonical_name
    options = _SUGGESTED.get(muxer, "libx264, libx265 or libvpx-vp9")
    held = supported_codecs(muxer)
    if held is not None and name not in held:
        raise StylizeError(f"{label}: {muxer} cannot hold {name} (from --codec {codec}); use --codec {options}")
    refused = _header_refuses(found, muxer)
    if refused:
        raise StylizeError(f"{label}: {muxer} cannot hold {name} (from --codec {codec}; FFmpeg: {refused}); "
                           f"use --codec {options}")


def _header_refuses(codec: av.Codec, muxer: str) -> str | None:
    """FFmpeg's reason when ``muxer`` refuses a small ``codec`` stream at its header, else None.

    Only where the muxer lists its codecs (others take any), and not for encoders that print to the
    terminal when opened (x265, SVT-AV1): the output's own header, written before the first frame,
    checks those. An encoder that cannot open here (NVENC without a GPU) is left to the output's open."""
    if muxer not in _LISTING_MUXERS or codec.name in _LOUD_ENCODERS:
        return None
    formats = [f.name for f in codec.video_formats or []]
    with ffmpeg_errors() as log, av.open(io.BytesIO(), "w", format=muxer) as probe:
        stream = probe.add_stream(codec.name, rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
        try:
            stream.codec_context.open()
        except (av.error.FFmpegError, ValueError):
            return None
        try:
            probe.start_encoding()
        except av.error.FFmpegError as exc:
            return log.reason(exc)
    return None


def _private_option(codec: str, name: str) -> CodecOption | None:
    """The encoder's own AVOption ``name`` (e.g. libx264's ``crf``), None where it has none."""
    try:
        options = av.CodecContext.create(codec, "w").supported_options.private
    except (ValueError, av.error.FFmpegError):
        return None
    return next((o for o in options if o.name == name), None)


def check_preset(codec: str, preset: str | None) -> None:
    """Refuse an unknown ``--preset`` before any work: x264/x265 names (x264 prints its own error line to the
    terminal when it opens with one, which FFmpeg's log level does not silence), or, for encoders whose
    ``preset`` option is a number (SVT-AV1, NVENC), one of its named values or a number in its range. An
    encoder without a ``preset`` option (VP9, FFV1) would ignore it: warned."""
    if preset is None:
        return
    if codec in _X26X:
        if preset not in X26X_PRESETS:
            raise StylizeError(f"--preset {preset!r} is not a {codec} preset; use one of {', '.join(X26X_PRESETS)}")
        return
    option = _private_option(codec, "preset")
    if option is None:
        warnings.warn(f"--preset {preset}: encoder {codec} has no presets; ignored", stacklevel=3)
        return
    if option.type != OptionType.INT:
        return  # (a string: the encoder's own names, checked when it opens)
    names = [c.name for c in option.choices]
    number = preset.lstrip("-").isdigit() and option.min <= int(preset) <= option.max
    if preset not in names and not number:
        named = f"one of {', '.join(names)} or " if names else ""
        raise StylizeError(f"--preset {preset!r} is not a {codec} preset; use {named}a number from "
                           f"{option.min:g} to {option.max:g}")


def check_crf(codec: str, crf: int | None) -> None:
    """Refuse a ``--crf`` outside the encoder's range before any work (libx264/libx265 would clamp 99 to 51 in
    silence: FFmpeg's option takes any number); warn where the encoder has no ``crf`` (FFV1, MJPEG, NVENC:
    it would be ignored)."""
    if crf is None:
        return
    option = _private_option(codec, "crf")
    if option is None:
        warnings.warn(f"--crf {crf}: encoder {codec} has no constant-quality (crf) setting; ignored "
                      "(--bitrate sets its rate)", stacklevel=3)
        return
    low, high = max(0, int(option.min)), _CRF_MAX.get(codec, int(option.max))
    if not low <= crf <= high:
        raise StylizeError(f"--crf {crf} is out of range for {codec}: {low} to {high} (lower is better quality)")


def subsampling(pix_fmt: str) -> tuple[int, int]:
    """(log2 horizontal, log2 vertical) chroma subsampling of ``pix_fmt``: (1, 1) for 4:2:0, (0, 0) for 4:4:4,
    RGB and grey."""
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    if len(fmt.components) < 3 or fmt.is_rgb:
        return 0, 0
    chroma = fmt.components[1]
    return (64 // chroma.width).bit_length() - 1, (64 // chroma.height).bit_length() - 1


def check_pix_fmt_name(pix_fmt: str) -> None:
    """Refuse an unknown ``--pix-fmt`` name."""
    try:
        av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        raise StylizeError(f"--pix-fmt {pix_fmt!r} is not a pixel format this FFmpeg knows (e.g. yuv420p, "
                           "yuv444p, yuv420p10le)") from None


def check_size_fits(pix_fmt: str, width: int, height: int) -> None:
    """Refuse an asked chroma-subsampled ``pix_fmt`` at a size it cannot have (4:2:0 needs even sizes)."""
    sx, sy = subsampling(pix_fmt)
    mx, my = 1 << sx, 1 << sy
    if width % mx == 0 and height % my == 0:
        return
    kind = {(1, 1): "4:2:0", (1, 0): "4:2:2", (2, 0): "4:1:1"}.get((sx, sy), "subsampled chroma")
    need = " and ".join(f"{what} a multiple of {m}" for what, m in (("width", mx), ("height", my)) if m > 1)
    padded = f"{-(-width // mx) * mx}x{-(-height // my) * my}"
    raise StylizeError(f"--pix-fmt {pix_fmt} ({kind}) needs the {need}; the output is {width}x{height}: "
                       f"leave --pix-fmt out to pad it to {padded}, or use --pix-fmt yuv444p to keep {width}x{height}")
