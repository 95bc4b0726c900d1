"""Seeking to a point of a video stream so that decoding from there gives every frame from that point on.

``av_seek_frame(..., AVSEEK_FLAG_BACKWARD)`` is meant to land on the keyframe at or before the target, and
does where the container has an index (MP4, Matroska). MPEG-TS has none: libavformat bisects the file by
timestamp (``ff_seek_frame_binary`` with ``mpegts_get_dts``, which takes every packet for a keyframe), so it
lands on the packet just before the target, after the keyframe the frames there depend on. The decoder
then skips to the next keyframe: with keyframes 10 s apart (screen and OBS recordings), ``--start 3`` gave
frames from 10 s on and lost the rest without a word (``ffmpeg -ss`` before ``-i`` does the same).

``seek_before`` checks where a seek landed: it decodes up to the first frame and, when that frame is later
than the target (or none comes), seeks again further back (1 s before the target, then 2 s, 4 s, ...; down to
the stream's start, where decoding from the start is what is left), then seeks to the point found once
more so that decoding starts clean.
"""

from __future__ import annotations

import av

_TRIES = 24  # (doubling from 1 s: far more than any file's length)
_LOOK_S = 30  # a probe reads at most this far past the target for a frame (then: seek earlier)


def _first_frame_pts(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     limit: int) -> tuple[bool, int | None]:
    """(found, PTS in the stream's time base) of the first frame the decoder gives from where the demuxer is.
    Not found: no frame before packets reach ``limit`` (PTS ticks; the keyframe needed is earlier anyway), a
    read error, or the end (frames held by frame threads there are not drained: a drained decoder would need a
    reset; near the end that reads as 'not found', i.e. seek earlier)."""
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None and ts > limit:
                return False, None
            try:
                frames = stream.codec_context.decode(packet)
            except av.error.FFmpegError:  # a damaged packet: go on, as the decoder does
                continue
            if frames:
                return True, frames[0].pts
    except (av.error.FFmpegError, IndexError):  # (IndexError: PyAV 18 on a stream added mid-file)
        pass
    return False, None


def seek_before(container: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: int) -> int:
    """Seek ``container`` so that decoding ``stream`` gives its frames from ``pts`` (``stream.time_base``
    ticks) on: to a keyframe at or before ``pts``. Returns the seek target used (``pts``, or earlier where
    the first seek landed after the keyframe). Decoders are flushed (PyAV's ``seek`` does it).

    Raises ``av.error.FFmpegError`` when the input cannot seek at all (a raw H.264 stream, a pipe).
    """
    tb = stream.time_base
    second = max(1, round(1 / tb))
    # before the first packet: the stream's start is its first PTS; with B-frames its first DTS is earlier
    floor = min(stream.start_time or 0, pts) - second
    target, back = pts, second  # 1 s before the target, then 2 s, 4 s, ...
    limit = pts + round(_LOOK_S / tb)
    for _ in range(_TRIES):
        container.seek(target, stream=stream, backward=True)
        found, first = _first_frame_pts(container, stream, limit)
        if target <= floor or (found and (first is None or first <= pts)):  # (no PTS: nothing to check)
            break
        target = max(floor, pts - back)
        back *= 2
    container.seek(target, stream=stream, backward=True)
    return target
