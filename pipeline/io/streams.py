"""Which video stream of an input to process, and which other streams ride along.

FFmpeg's players and ``ffmpeg -i in out`` pick the video stream with ``av_find_best_stream``
(libavformat/avformat.c): among streams of the type, those without a decoder are skipped, then the
highest *disposition score* wins (1 unless flagged hearing/visually impaired, +1 when flagged default),
then the most frames seen while probing (capped at 5), then the highest bit rate, then the most probed
frames; ties keep the first stream. Attached pictures (cover art: one still image flagged
``attached_pic``) are video streams to FFmpeg but never the video (``ffmpeg`` scores them last;
``-map 0:V`` excludes them).

``choose_video_stream`` keeps that ranking by calling FFmpeg's own function (PyAV's
``StreamContainer.best``) with the streams we must not take (attached pictures, streams without a
decoder) demoted for the call; ``--video-stream N`` takes stream N (the index ``ffprobe`` prints as
``Stream #0:N``) and refuses anything that is not a decodable video stream, with one line listing what
the file holds.
"""

from __future__ import annotations

import warnings
from collections import deque

import av
from av.stream import Disposition
from stylize_video.errors import StylizeError

_IMPAIRED = Disposition.hearing_impaired | Disposition.visual_impaired
_GOES_ON = (3, 0.2)  # packets, seconds of another video stream after the processed one ends
_KEEP = 4096  # packet times kept per stream not processed (enough to tell it goes on alone)


def is_attached_picture(stream: av.stream.Stream) -> bool:
    """True for cover art / thumbnails: a still image stored as a one-packet video stream."""
    return stream.type == "video" and bool(stream.disposition & Disposition.attached_pic)


def has_decoder(stream: av.stream.Stream) -> bool:
    """True when this FFmpeg can decode ``stream`` (``av_find_best_stream``'s ``decoder_ret`` check)."""
    cc = stream.codec_context
    if cc is None:
        return False
    try:
        av.Codec(cc.codec.name, "r")
    except (ValueError, av.error.FFmpegError):
        return False
    return True


def describe_video(stream: av.stream.Stream) -> str:
    """``#1 (h264 1920x1080, default)`` for messages and the run summary."""
    cc = stream.codec_context
    codec = cc.codec.canonical_name if cc is not None else "unknown codec"
    size = f" {cc.width}x{cc.height}" if cc is not None and cc.width else ""
    flags = [name for name, flag in (("default", Disposition.default), ("attached picture", Disposition.attached_pic))
             if stream.disposition & flag]
    return f"#{stream.index} ({codec}{size}{', ' if flags else ''}{', '.join(flags)})"


def _video_list(container: av.container.InputContainer) -> str:
    videos = container.streams.video
    return "video streams: " + ", ".join(describe_video(s) for s in videos) if videos else "no video streams"


def _checked(container: av.container.InputContainer, wanted: int, name: str) -> av.video.stream.VideoStream:
    streams = container.streams
    if not 0 <= wanted < len(streams):
        raise StylizeError(f"--video-stream {wanted}: {name} has streams 0 to {len(streams) - 1}; "
                           f"{_video_list(container)}")
    stream = streams[wanted]
    if stream.type != "video":
        raise StylizeError(f"--video-stream {wanted}: stream #{wanted} of {name} is {stream.type}, not video; "
                           f"{_video_list(container)}")
    if is_attached_picture(stream):
        raise StylizeError(f"--video-stream {wanted}: stream #{wanted} of {name} is an attached picture "
                           f"(cover art), not video; {_video_list(container)}")
    if not has_decoder(stream):
        raise StylizeError(f"--video-stream {wanted}: this FFmpeg has no decoder for stream #{wanted} of {name}")
    return stream


def _ffmpeg_best(container: av.container.InputContainer,
                 eligible: list[av.stream.Stream]) -> av.stream.Stream | None:
    """FFmpeg's ``av_find_best_stream`` over the video streams, with the ineligible ones demoted.

    A demoted stream (flagged hearing + visually impaired, not default) scores 0 in the first criterion,
    below every eligible stream not so flagged; the dispositions are restored before returning.
    """
    others = [s for s in container.streams.video if s not in eligible]
    saved = [(s, s.disposition) for s in others]
    try:
        for s in others:
            s.disposition = (s.disposition & ~Disposition.default) | _IMPAIRED
        best = container.streams.best("video")
    finally:
        for s, disposition in saved:
            s.disposition = disposition
    return best if best in eligible else None


def _disposition_score(stream: av.stream.Stream) -> int:
    d = stream.disposition
    return int(not d & _IMPAIRED) + int(bool(d & Disposition.default))


def choose_video_stream(container: av.container.InputContainer, wanted: int | None,
                        name: str) -> av.video.stream.VideoStream:
    """The video stream to process: stream ``wanted`` (checked), else FFmpeg's choice.

    ``name`` names the input in messages. Raises ``StylizeError`` when the file has no decodable video
    stream other than attached pictures, or when ``wanted`` is not one.
    """
    if wanted is not None:
        return _checked(container, wanted, name)
    videos = container.streams.video
    pictures = [s for s in videos if is_attached_picture(s)]
    eligible = [s for s in videos if s not in pictures and has_decoder(s)]
    if not eligible:
        if pictures and len(pictures) == len(videos):
            raise StylizeError(f"{name} has no video stream, only an attached picture (cover art)")
        if videos:
            codecs = ", ".join(describe_video(s) for s in videos if s not in pictures)
            raise StylizeError(f"{name}: this FFmpeg has no decoder for its video ({codecs})")
        raise StylizeError(f"{name} has no video stream")
    if len(eligible) == 1:
        return eligible[0]
    best = _ffmpeg_best(container, eligible)
    if best is None:  # every eligible stream flagged impaired and not default: tie with the demoted ones
        best = max(eligible, key=lambda s: (_disposition_score(s), -s.index))
    return best


def attached_pictures(container: av.container.InputContainer) -> list[av.stream.Stream]:
    """Cover-art streams, copied where the output container holds them (MP4), else dropped with a note."""
    return [s for s in container.streams.video if is_attached_picture(s)]


class OtherVideo:
    """Watches the video streams not processed for one that goes on after the processed one stops.

    An MPEG-TS whose program switches its video to another PID (a re-multiplexed broadcast, two recordings
    with different PIDs joined) holds two video streams one after the other; ``ffmpeg`` and we process
    the one ``av_find_best_stream`` picks, and the frames of the other are left out. ``see`` takes the
    packets of all video streams; ``note()`` at the end warns once for a stream that carries video past
    the processed stream's last packet (3 packets or more, over 0.2 s: more than interleaving or tracks of
    slightly different lengths), naming the flag that takes it. (Only the other
    streams' packets later than the processed stream's latest are kept: a few, unless one goes on alone.)
    """

    def __init__(self, chosen: av.stream.Stream, name: str) -> None:
        self.chosen, self.name = chosen, name
        self.last: float | None = None  # time of the processed stream's latest packet, seconds
        self.later: dict[int, deque[float]] = {}  # stream index -> times of its packets after that
        self.streams: dict[int, av.stream.Stream] = {}

    def see(self, packet: av.Packet) -> None:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return
        t = float(ts * packet.time_base)
        if packet.stream.index == self.chosen.index:
            self.last = t if self.last is None else max(self.last, t)
            for times in self.later.values():
                while times and times[0] <= self.last:
                    times.popleft()
            return
        self.streams[packet.stream.index] = packet.stream
        times = self.later.setdefault(packet.stream.index, deque(maxlen=_KEEP))
        if self.last is None or t > self.last:
            times.append(t)

    def note(self) -> None:
        """Warn about a stream that went on after the processed one stopped (``_GOES_ON``)."""
        if self.last is None:
            return
        for index, times in sorted(self.later.items()):
            if len(times) >= _GOES_ON[0] and times[-1] - self.last > _GOES_ON[1]:
                warnings.warn(f"{self.name}: video stream {describe_video(self.streams[index])} goes on for "
                              f"{times[-1] - self.last:.1f} s after stream #{self.chosen.index} (the one processed) "
                              f"ends, e.g. a program that switched its video PID; its frames are not processed "
                              f"(--video-stream {index} takes that stream)", stacklevel=2)
                return
