"""An input that ends before its header says it does: a download cut short, a recording stopped mid-write.

A faststart MP4 cut at 60 % still opens (its index is at the front) and decodes up to the cut, and
FFmpeg's default decode just stops there; the run would look complete. ``header_end`` reads where the
header says the video ends, ``ended_early`` compares it with the last frame decoded and, when the input
stopped short by more than two frames (and 0.1 s), warns once and counts the frames missing
(``StreamDamage.frames_missing``, in the summary and ``--json``).

Only headers that give the end of the video stream itself are trusted: the stream duration of MP4/MOV
(its sample table) and the per-stream ``DURATION`` tag of Matroska/WebM. Container durations can include
longer audio; MPEG-TS/FLV durations are estimates from the bit rate and their timestamps may jump.
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction

import av
from stylize_video.pipeline.io.damage import StreamDamage

_TS_DISCONT = 0x0200  # AVFMT_TS_DISCONT: timestamps may jump, durations are estimates
_TAG = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def header_end(container: av.container.InputContainer, video: av.stream.Stream) -> Fraction | None:
    """Where ``video`` ends by the header, in seconds (start + duration); None where the header does not say."""
    if container.format.flags & _TS_DISCONT or video.time_base is None:
        return None
    start = video.start_time * video.time_base if video.start_time is not None else Fraction(0)
    if video.duration:
        return start + video.duration * video.time_base
    match = _TAG.match(video.metadata.get("DURATION", "").strip())
    if match is None:
        return None
    h, m, s = match.groups()
    return start + int(h) * 3600 + int(m) * 60 + Fraction(s)


def ended_early(name: str, end: Fraction | None, last_end: float | None, rate: Fraction | None,
                damage: StreamDamage) -> None:
    """Warn and count when the last frame decoded stops being shown (``last_end``, seconds) well before ``end``
    (seconds, ``header_end``); ``rate`` is the nominal frame rate (frames/s), ``damage`` the video stream's."""
    if end is None or last_end is None:
        return
    step = 1 / float(rate) if rate else 1 / 25
    missing = float(end) - last_end
    if missing <= max(2 * step, 0.1):
        return
    frames = max(1, round(missing / step))
    damage.frames_missing += frames
    warnings.warn(f"{name}: the input ends at {last_end:.2f} s of the {float(end):.2f} s its header gives "
                  f"(about {frames} frames missing): truncated?", stacklevel=3)
