"""Audio the output container cannot hold as it is, re-encoded (as ``ffmpeg`` does without ``-c:a copy``).

AAC cannot go into WebM, FLAC and Opus cannot go into MOV, PCM into WebM, ... Dropping the audio of a
clip (what we did) is rarely what a user wants; ``recode_audio`` decodes the stream and encodes it with
the first encoder of ``containers.AUDIO_TARGETS`` the container takes (Opus for WebM / Matroska, AAC
for MP4 / MOV / MPEG-TS), keeping the channel layout and sample rate where the encoder takes them
(Opus: 48 kHz) and each frame's timestamps; PyAV's encoder resamples and re-chunks to the encoder's
sample format and frame size. Bit rate: 64 kbit/s per channel, at most 512 kbit/s. A damaged packet the
decoder refuses is skipped and counted (``StreamDamage.decode_errors`` of the input stream).
"""

from __future__ import annotations

import warnings

import av
from stylize_video.pipeline.io.containers import AUDIO_TARGETS
from stylize_video.pipeline.io.damage import StreamDamage

_RATES = {"libopus": (48000, 24000, 16000, 12000, 8000), "opus": (48000,)}
# av_channel_layout_default (libavutil/channel_layout.c): the layout FFmpeg assumes for a channel count
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def named_layout(layout: av.AudioLayout | None, channels: int) -> av.AudioLayout | None:
    """``layout``, or FFmpeg's default layout for ``channels`` where it names no channels (PCM from Matroska,
    WAV without a channel mask: "2 channels"). Muxers that store a layout refuse an unnamed one (MP4 PCM: "unsupported
    channel layout" at the trailer), and ``ffmpeg`` assumes the default one the same way when it decodes."""
    named = layout is not None and layout.channels and all(ch.name != "NONE" for ch in layout.channels)
    if named or channels not in _DEFAULT_LAYOUTS:
        return layout
    return av.AudioLayout(_DEFAULT_LAYOUTS[channels])


def _decoder(template: av.stream.Stream) -> av.codec.context.CodecContext:
    """A decoder of its own for ``template`` (several sinks may re-encode the same input stream)."""
    src = template.codec_context
    dec = av.CodecContext.create(src.codec.name, "r")
    dec.sample_rate, dec.layout, dec.format = src.sample_rate, named_layout(src.layout, src.channels), src.format
    if src.extradata:  # AudioSpecificConfig (AAC in MP4), FLAC STREAMINFO, Opus header
        dec.extradata = src.extradata
    dec.open(strict=False)
    return dec


def _rate(encoder: str, rate: int) -> int:
    allowed = _RATES.get(encoder)
    return rate if not allowed or rate in allowed else allowed[0]


class AudioRecoder:
    """Decodes ``template``'s packets and encodes them on ``out`` (an output audio stream)."""

    def __init__(self, decoder: av.codec.context.CodecContext, out: av.audio.stream.AudioStream,
                 template: av.stream.Stream, damage: StreamDamage) -> None:
        self.decoder, self.out, self.template, self.damage = decoder, out, template, damage

    def _encode(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        packets = []
        for frame in frames:
            if frame.time_base is None:
                frame.time_base = self.template.time_base
            packets += self.out.encode(frame)
        return packets

    def __call__(self, packet: av.Packet) -> list[av.Packet]:
        """Encoded packets for one input packet (often none: the encoder buffers a frame or more)."""
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            self.damage.decode_errors += 1  # damaged: skipped like a damaged video packet
            return []
        return self._encode(frames)

    def flush(self) -> list[av.Packet]:
        """The decoder's and encoder's last packets, at the end of the output."""
        try:
            frames = self.decoder.decode(None)
        except av.error.FFmpegError:
            frames = []
        return self._encode(frames) + self.out.encode(None)


def recode_audio(container: av.container.OutputContainer, template: av.stream.Stream, damage: StreamDamage,
                 note: str) -> tuple[av.stream.Stream, AudioRecoder] | None:
    """An output stream re-encoding ``template`` and its recoder, or None when no target encoder works.

    ``note`` starts the warning that says so (e.g. ``audio stream #1 (aac): webm cannot hold aac``).
    """
    src = template.codec_context
    if src is None or not src.sample_rate:
        return None
    accepted = container.supported_codecs
    for name in AUDIO_TARGETS.get(container.format.name, ("aac",)):
        try:
            codec = av.Codec(name, "w")
            decoder = _decoder(template)
        except (ValueError, av.error.FFmpegError):
            continue
        if accepted and codec.canonical_name not in accepted:
            continue
        rate = _rate(codec.name, src.sample_rate)
        channels, layout = max(1, src.channels), named_layout(src.layout, src.channels)
        bitrate = min(512_000, 64_000 * channels)
        try:  # a throwaway encoder first: a stream, once added, cannot be taken back
            probe = av.CodecContext.create(codec.name, "w")
            probe.sample_rate, probe.layout, probe.bit_rate = rate, layout, bitrate
            probe.format = codec.audio_formats[0] if codec.audio_formats else "fltp"
            probe.open(strict=False)
            out = container.add_stream(codec.name, rate=rate, layout=layout)
        except (ValueError, av.error.FFmpegError):
            continue
        out.bit_rate = bitrate
        warnings.warn(f"{note}; re-encoded to {codec.canonical_name} ({bitrate // 1000} kbit/s)", stacklevel=3)
        return out, AudioRecoder(decoder, out, template, damage)
    return None

