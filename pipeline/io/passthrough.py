"""Pass-through streams (audio, subtitles) in an output: copied, re-encoded (text subtitles) or dropped.

``ffmpeg -c copy`` fails at the header when the output container cannot hold a stream (SubRip in MP4,
mov_text in Matroska or WebM); plain ``ffmpeg`` re-encodes subtitles with the container's subtitle encoder.
A sink asks ``route_stream`` once per input stream, before anything is written:

- the muxer takes the codec: packets are copied byte for byte (timestamps rescaled by the muxer);
- a *text* subtitle codec it doesn't take: each cue is decoded to an ASS event and encoded with a text
  codec the muxer does take (``TEXT_TARGETS``: mov_text for MP4/MOV, WebVTT for WebM, ASS for Matroska),
  keeping the cue's PTS and duration. Styling the target codec cannot express is lost, as with ffmpeg;
- audio it doesn't take (AAC in WebM, FLAC/Opus in MOV): re-encoded with a codec it does take, with a
  note (``stylize_video.pipeline.io.audio``);
- attached pictures (cover art) are copied into MP4, the one output container of ours that stores them;
- anything else (bitmap subtitles where the muxer has no bitmap codec, subtitles in MPEG-TS/FLV, cover
  art elsewhere): dropped with one warning naming the stream, the output and the flag that leaves it out.

Stream metadata (language, title, handler) and disposition (default, forced, ...) are carried in all cases.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import av
from stylize_video.pipeline.io.audio import named_layout, recode_audio
from stylize_video.pipeline.io.containers import AUDIO_TARGETS
from stylize_video.pipeline.io.damage import DamageLog
from stylize_video.pipeline.io.fflog import ffmpeg_errors
from stylize_video.pipeline.io.streams import is_attached_picture

# text subtitle encoders, in order of preference where the container has no default one that fits
TEXT_TARGETS = ("mov_text", "webvtt", "ass", "subrip")
# stylize-video flag that leaves a stream type out, named in the warning that drops one
SILENCE_FLAG = {"audio": ("--no-audio", "audio"), "subtitle": ("--no-subtitles", "subtitles")}
# MPEG-TS muxers take any subtitle codec, but only these have a TS stream type (others come back as "data")
_TS_MUXERS = ("mpegts", "rtp_mpegts")
_TS_SUBTITLES = ("dvb_subtitle", "dvb_teletext")
# a mov_text sample with no text (16-bit length 0) and no style boxes
_MOV_TEXT_EMPTY = b"\x00\x00"
# muxers that store an attached picture (cover art) from a copied stream (MOV and Matroska do not, here)
_COVER_MUXERS = ("mp4", "ipod")
# tags a muxer computes (Matroska DURATION, mkvmerge statistics): a copy would be stale after --start/--duration
_COMPUTED_TAGS = ("duration", "number_of_frames", "number_of_bytes", "bps", "_statistics")


def codec_name(stream: av.stream.Stream) -> str:
    """The codec's descriptor name (``subrip``, ``hdmv_pgs_subtitle``), not the decoder's (``srt``, ``pgssub``)."""
    cc = stream.codec_context
    return cc.codec.canonical_name if cc is not None else "unknown codec"


def describe(stream: av.stream.Stream) -> str:
    """``subtitle stream #2 (subrip, fra "French")`` for messages."""
    md = stream.metadata
    extra = "".join(f" {v}" for v in (md.get("language"),) if v)
    title = md.get("title") or md.get("name")
    extra += f' "{title}"' if title else ""
    return f"{stream.type} stream #{stream.index} ({codec_name(stream)}{',' if extra else ''}{extra})"


def stream_metadata(template: av.stream.Stream) -> dict[str, str]:
    """Metadata to write for a copy of ``template``: all tags but those the muxer computes.

    The MOV/MP4 demuxer reports a track title as ``name``; muxers write ``title``.
    """
    md = {k: v for k, v in template.metadata.items() if not k.lower().startswith(_COMPUTED_TAGS)}
    if "title" not in md and "name" in md:
        md["title"] = md.pop("name")
    return md


def _subtitle_decoder(template: av.stream.Stream) -> av.codec.context.CodecContext:
    """A decoder of its own for ``template`` (not the input stream's context: several sinks may convert it)."""
    src = template.codec_context
    decoder = av.CodecContext.create(src.codec.name, "r")
    if src.extradata:  # ASS script header, mov_text sample description
        decoder.extradata = src.extradata
    decoder.open(strict=False)
    return decoder


def _text_encoder(ctx: av.codec.context.CodecContext, header: bytes | None) -> av.codec.context.CodecContext:
    """``ctx`` opened with the decoder's ASS header, the styles a text encoder maps from (as ffmpeg does)."""
    if header is not None:
        ctx.subtitle_header = header
    ctx.open(strict=False)
    return ctx


class TextRecoder:
    """Re-encodes text subtitle packets with ``encoder``; each cue keeps its packet's timing."""

    def __init__(self, decoder: av.codec.context.CodecContext, encoder: av.codec.context.CodecContext,
                 name: str) -> None:
        self.decoder, self.encoder, self.name = decoder, encoder, name
        self.failed = 0

    def __call__(self, packet: av.Packet) -> av.Packet | None:
        """The re-encoded cue, or None for packets without text (mov_text gap samples) or that fail."""
        try:
            subs = self.decoder.decode2(packet)
            if subs is None or len(subs) == 0:
                return None
            out = self.encoder.encode_subtitle(subs)
        except (av.error.FFmpegError, ValueError) as exc:
            self.failed += 1  # a damaged cue is skipped, like a damaged video packet; said once
            if self.failed == 1:
                warnings.warn(f"{self.name}: a cue could not be converted to {self.encoder.name}, skipped "
                              f"({getattr(exc, 'strerror', None) or exc}); further ones are skipped silently",
                              stacklevel=2)
            return None
        # encode_subtitle stamps AV_TIME_BASE / ms values; the packet's own timing is exact
        out.time_base = packet.time_base
        out.pts = packet.pts
        out.dts = packet.dts if packet.dts is not None else packet.pts
        out.duration = packet.duration  # the encoder leaves 0: a cue's display time is its packet's
        return out


@dataclass
class Route:
    """Where one input stream's packets go: ``out``, copied or through ``convert`` (a ``TextRecoder``, one
    packet or None per packet, or an ``AudioRecoder``, a list per packet and a ``flush()`` at the end)."""

    out: av.stream.Stream
    convert: Callable[[av.Packet], av.Packet | list[av.Packet] | None] | None = None

    def __post_init__(self) -> None:
        # mov_text end-of-cue samples: the MOV/MP4 muxer writes its own where a gap starts, and a copied
        # one next to it would be a second, zero-length sample. (Re-encoding skips them: they hold no cue.)
        self._skip_empty = self.convert is None and self.out.codec_context.name == "mov_text"

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        """The packets to mux for ``packet`` (the same object, re-targeted, when copying)."""
        if self._skip_empty and bytes(packet) == _MOV_TEXT_EMPTY:
            return []
        converted = self.convert(packet) if self.convert is not None else packet
        out = converted if isinstance(converted, list) else [] if converted is None else [converted]
        for p in out:
            p.stream = self.out
        return out

    def flush(self) -> list[av.Packet]:
        """Packets a converter still holds, at the end of the output."""
        flush = getattr(self.convert, "flush", None)
        return flush() if flush is not None else []


def _carry(template: av.stream.Stream, out: av.stream.Stream) -> None:
    out.metadata.update(stream_metadata(template))
    out.disposition = template.disposition
    _name_layout(out)


def _name_layout(out: av.stream.Stream) -> None:
    """A copied audio stream with an unnamed layout ("2 channels") gets FFmpeg's default one."""
    if out.type == "audio":
        cc = out.codec_context
        layout = named_layout(cc.layout, cc.channels)
        if layout is not None and layout.name != cc.layout.name:
            cc.layout = layout


def _text_targets(container: av.container.OutputContainer) -> list[str]:
    default = container.default_subtitle_codec
    return ([default] if default in TEXT_TARGETS else []) + [t for t in TEXT_TARGETS if t != default]


def _recode(container: av.container.OutputContainer, template: av.stream.Stream) -> Route | None:
    """A re-encoding route for a text subtitle stream, or None when no text codec fits the container."""
    try:
        decoder = _subtitle_decoder(template)
    except (av.error.FFmpegError, ValueError):
        return None
    header = decoder.subtitle_header
    accepted = container.supported_codecs
    for target in _text_targets(container):
        if target not in accepted:
            continue
        try:  # a throwaway encoder first: a stream, once added, cannot be taken back
            _text_encoder(av.CodecContext.create(target, "w"), header)
        except (av.error.FFmpegError, ValueError):
            continue
        try:
            out = container.add_stream(target)
        except ValueError:  # refused before a stream is added
            continue
        out.time_base = template.time_base
        _carry(template, out)
        return Route(out, TextRecoder(decoder, _text_encoder(out.codec_context, header), describe(template)))
    return None


class _TrailerRefused(Exception):
    """The muxer takes the stream in its header and refuses it in its trailer (FFmpeg's reason)."""


def _check_header(container: av.container.OutputContainer, template: av.stream.Stream) -> None:
    """Raise where the muxer would refuse ``template``'s codec only when it writes the header (FLAC and Opus
    in MOV, 24-bit PCM in MP4: ``add_stream_from_template`` takes them), which would fail the whole output.
    Tried on a header of its own in memory; muxers that write no file (RTSP) are not tried. PCM is tried
    with one silent packet and the trailer too: MP4 checks its channel layout only there, after all the work
    ("unsupported channel layout 12 channels": more channels than any layout FFmpeg names) —
    ``_TrailerRefused``."""
    if container.format.no_file:
        return
    with av.open(io.BytesIO(), "w", format=container.format.name) as probe:
        out = probe.add_stream_from_template(template)
        _name_layout(out)
        probe.start_encoding()
        cc = template.codec_context
        if not cc.codec.name.startswith("pcm_"):
            return
        bits = int(re.search(r"\d+", cc.codec.name).group()) if re.search(r"\d+", cc.codec.name) else 8  # s24le: 24
        packet = av.Packet(bytes(max(1, cc.channels) * max(1, bits // 8)))  # one sample per channel
        packet.stream, packet.pts, packet.dts, packet.duration = out, 0, 0, 1
        probe.mux(packet)
        with ffmpeg_errors() as log:
            try:
                probe.close()
            except av.error.FFmpegError as exc:
                raise _TrailerRefused(log.reason(exc)) from None


def route_stream(container: av.container.OutputContainer, template: av.stream.Stream,
                 label: str, damage: DamageLog | None = None) -> Route | None:
    """The route for ``template``'s packets into ``container`` (``label`` names it), or None (dropped, warned).

    ``damage`` counts the packets a re-encoder cannot decode (per input stream)."""
    codec = template.codec_context.codec if template.codec_context is not None else None
    ts_private = (container.format.name in _TS_MUXERS and template.type == "subtitle"
                  and codec_name(template) not in _TS_SUBTITLES)
    cover = is_attached_picture(template)
    try:
        if ts_private:  # accepted, but written as anonymous private data that no player reads back
            raise ValueError("no MPEG-TS stream type")
        if cover and container.format.name not in _COVER_MUXERS:
            raise ValueError("no cover art")
        _check_header(container, template)
        out = container.add_stream_from_template(template)
    except _TrailerRefused as exc:
        reason = f"{container.format.name} cannot hold {codec_name(template)} in {template.codec_context.channels} " \
                 f"channels (FFmpeg: {exc})"
    except (ValueError, av.error.FFmpegError):
        reason = f"{container.format.name} cannot hold {codec_name(template)}"
    else:
        _carry(template, out)
        return Route(out)
    if cover:
        reason = f"{container.format.name} stores no attached picture (cover art) from a video stream"
    elif template.type == "audio":
        recoded = recode_audio(container, template, (damage or DamageLog()).of(template),
                               f"{describe(template)}: {reason} in {label}")
        if recoded is not None:
            out, recoder = recoded
            _carry(template, out)
            return Route(out, recoder)
        reason += f", and {'/'.join(AUDIO_TARGETS.get(container.format.name, ('aac',)))} cannot encode it"
    elif template.type == "subtitle" and codec is not None and codec.text_sub and not ts_private:
        route = _recode(container, template)
        if route is not None:
            return route
        reason = f"{container.format.name} holds no text subtitle codec we can encode"
    elif template.type == "subtitle" and codec is not None and codec.bitmap_sub:
        reason += "; bitmap subtitles cannot be converted to text"
    flag, noun = SILENCE_FLAG.get(template.type, (None, None))
    hint = f"; pass {flag} to leave {noun} out" if flag else ""
    if template.type == "audio" and container.format.name != "matroska":
        hint = f"; write .mkv to keep it{hint.replace('; pass', ', or pass')}"
    warnings.warn(f"{describe(template)} cannot go into {label}: dropped ({reason}){hint}", stacklevel=2)
    return None
