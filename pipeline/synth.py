"""Synthetic test clips written with PyAV: moving colour patterns with real stream properties.

Used by the tests of every stage (and by the live and benchmark engineers) so that no test needs a
downloaded video. Each clip has what the pipeline must preserve: colour tags, (optionally) irregular
PTS, an AAC audio track, display-matrix rotation, 10-bit pixel formats, odd sizes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# colorspace name -> (swscale matrix, AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic)
_COLOUR_TAGS: dict[str, tuple[str, int, int, int]] = {
    "bt601": ("smpte170m", 6, 6, 6),  # SMPTE 170M = BT.601 525-line
    "bt709": ("itu709", 1, 1, 1),
    "bt2020": ("bt2020", 9, 9, 14),  # BT.2020 non-constant luminance, 10-bit transfer
}
# range name -> (swscale range, AVColorRange)
_RANGES: dict[str, tuple[str, int]] = {"tv": ("MPEG", 1), "pc": ("JPEG", 2)}
# Finer than any frame rate used, so irregular VFR timestamps are exact.
_VFR_TICKS_PER_FRAME = 6


def _gradient(t: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth moving colour waves (band-limited: survives 4:2:0 chroma subsampling)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = 0.35 * t
    r = 128 + 90 * np.sin(2 * math.pi * x / max(w, 2) + phase)
    g = 128 + 90 * np.sin(2 * math.pi * y / max(h, 2) - 0.7 * phase)
    b = 128 + 90 * np.cos(2 * math.pi * (x + y) / max(w + h, 2) + 0.5 * phase)
    return np.stack([r, g, b], axis=-1)


def _bars(t: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Scrolling saturated colour bars: hard chroma edges."""
    colours = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                        [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.float32)
    x = (np.arange(w) + 2 * t) % w
    band = (x * len(colours)) // w
    return np.broadcast_to(colours[band][None], (h, w, 3)).copy()


def _noise(t: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise over a moving gradient: worst case for the encoder."""
    return np.clip(_gradient(t, h, w, rng) + rng.uniform(-40, 40, (h, w, 3)), 0, 255)


PATTERNS: dict[str, Callable[[int, int, int, np.random.Generator], np.ndarray]] = {
    "gradient": _gradient,
    "bars": _bars,
    "noise": _noise,
}


def _frame_ticks(frames: int, vfr: bool) -> list[int]:
    """PTS of each frame in units of 1 / (fps * _VFR_TICKS_PER_FRAME); irregular steps when ``vfr``."""
    if not vfr:
        return [i * _VFR_TICKS_PER_FRAME for i in range(frames)]
    steps = [3, 9, 6, 4, 12, 5]  # averages the nominal rate, deliberately irregular
    ticks, t = [], 0
    for i in range(frames):
        ticks.append(t)
        t += steps[i % len(steps)]
    return ticks


def make_test_clip(
    path: str | os.PathLike[str],
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    fps: int = 25,
    vfr: bool = False,
    audio: bool = True,
    colorspace: str = "bt709",
    color_range: str = "tv",
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pattern: str = "gradient",
    interlaced: bool = False,
    seed: int = 0,
    gop: int | None = None,
    bframes: int = 0,
) -> Path:
    """Write a short real video and return its path. The container follows the file extension.

    - ``vfr``: irregular frame durations (PTS steps of 0.5x-2x the nominal 1/fps).
    - ``audio``: AAC stereo 48 kHz tone as long as the video.
    - ``colorspace`` ("bt601" | "bt709" | "bt2020") and ``color_range`` ("tv" limited | "pc" full): the
      RGB pattern is converted with those coefficients and the stream is tagged with them.
    - ``rotation``: degrees counter-clockwise written as display-matrix side data (PyAV >= 17.1
      ``Stream.set_display_rotation``), as phones do.
    - ``pix_fmt``: e.g. yuv420p, yuv420p10le (libx264 high10 / libx265), yuv444p.
    - ``interlaced``: libx264 interlaced (TFF) coding; frames are tagged as interlaced.
    - ``gop``: a keyframe every ``gop`` frames exactly (no scene-cut keyframes); ``bframes``: up to that many
      B-frames (frames reordered: decode order differs from presentation order).
    """
    path = Path(path)
    if colorspace not in _COLOUR_TAGS:
        raise ValueError(f"colorspace must be one of {sorted(_COLOUR_TAGS)}, got {colorspace!r}")
    if color_range not in _RANGES:
        raise ValueError(f"color_range must be one of {sorted(_RANGES)}, got {color_range!r}")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {sorted(PATTERNS)}, got {pattern!r}")
    sws_space, av_space, av_prim, av_trc = _COLOUR_TAGS[colorspace]
    sws_range, av_range = _RANGES[color_range]
    rng = np.random.default_rng(seed)
    tick = Fraction(1, fps * _VFR_TICKS_PER_FRAME)
    ticks = _frame_ticks(frames, vfr)
    duration_s = float((ticks[-1] + _VFR_TICKS_PER_FRAME) * tick) if frames else 0.0

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        options = {"flags": "+ildct+ilme", "x264-params": "tff=1"} if interlaced and codec == "libx264" else {}
        if codec == "libx264":
            # Keep the tiny test clips fast to write.
            options |= {"preset": "ultrafast" if not interlaced else "veryfast"}
            params = ([options["x264-params"]] if "x264-params" in options else []) + [f"bframes={bframes}"]
            if gop:
                params.append(f"keyint={gop}:min-keyint={gop}:scenecut=0")
            options["x264-params"] = ":".join(params)
        vs = out.add_stream(codec, rate=fps, options=options)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.time_base = tick
        vs.codec_context.time_base = tick
        cc = vs.codec_context
        if codec != "libx264":
            cc.max_b_frames = bframes
            if gop:
                cc.gop_size = gop
        cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = av_space, av_prim, av_trc, av_range
        if rotation:
            vs.set_display_rotation(float(rotation))
        audio_stream = None
        if audio:
            audio_stream = out.add_stream("aac", rate=48000, layout="stereo")

        tone = _Tone(out, audio_stream) if audio_stream is not None else None
        for i, t in enumerate(ticks):
            if tone is not None:  # audio up to this frame's time first: the file is interleaved like a real one
                tone.write_until(float(t * tick))
            rgb = np.ascontiguousarray(np.clip(PATTERNS[pattern](i, height, width, rng), 0, 255).astype(np.uint8))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=sws_space, dst_color_range=sws_range)
            frame.colorspace, frame.color_range = av_space, av_range
            frame.pts, frame.time_base = t, tick
            out.mux(vs.encode(frame))
        if tone is not None:
            tone.write_until(duration_s, final=True)
        out.mux(vs.encode(None))
        if tone is not None:
            out.mux(audio_stream.encode(None))
    return path


def _moving_square(t: int, h: int, w: int) -> np.ndarray:
    """A bright square moving right 6 px per field over a vertical ramp with soft horizontal texture (RGB)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 60 + 120 * y / h + 20 * np.sin(x / 7.0)
    img[(np.abs(x - (8 + 6 * t) % w) < w / 12) & (np.abs(y - h / 2) < h / 4)] = 235
    return np.repeat(img[..., None], 3, axis=2)


def make_interlaced_clip(path: str | os.PathLike[str], *, width: int = 128, height: int = 96, frames: int = 12,
                         fps: int = 25) -> Path:
    """Write truly interlaced video: each frame weaves two fields sampled 1/(2 fps) apart (top field first),
    so the moving square shows combing, and libx264 codes it interlaced (frames flagged interlaced, TFF).

    Frame ``i`` holds field time ``2i`` on its even lines and ``2i + 1`` on its odd lines. No audio.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"flags": "+ildct+ilme", "x264-params": "tff=1",
                                                          "preset": "veryfast", "crf": "12"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            woven = _moving_square(2 * i, height, width)
            woven[1::2] = _moving_square(2 * i + 1, height, width)[1::2]
            rgb = np.ascontiguousarray(np.clip(woven, 0, 255).astype(np.uint8))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


class _Tone:
    """A 440 Hz (left) / 660 Hz (right) tone encoded in 1024-sample frames, written on demand."""

    CHUNK = 1024

    def __init__(self, out: av.container.OutputContainer, stream: av.AudioStream) -> None:
        self.out, self.stream, self.rate, self.pos = out, stream, stream.rate, 0

    def write_until(self, seconds: float, final: bool = False) -> None:
        end = math.ceil(seconds * self.rate)
        while self.pos < end and (final or self.pos + self.CHUNK <= end):
            n = min(self.CHUNK, end - self.pos)
            t = (np.arange(self.pos, self.pos + n) / self.rate).astype(np.float32)
            samples = np.stack([0.3 * np.sin(2 * math.pi * 440 * t), 0.3 * np.sin(2 * math.pi * 660 * t)])
            frame = av.AudioFrame.from_ndarray(samples.astype(np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self.pos, Fraction(1, self.rate)
            self.out.mux(self.stream.encode(frame))
            self.pos += n


def corrupt_clip(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, start: float = 0.4,
                 length: int = 256, seed: int = 0) -> Path:
    """Copy ``src`` to ``dst`` with ``length`` random bytes overwritten at ``start`` (fraction of the file).

    The container header stays intact, so the file opens but some packets fail to decode.
    """
    data = bytearray(Path(src).read_bytes())
    at = int(len(data) * start)
    data[at:at + length] = np.random.default_rng(seed).integers(0, 256, min(length, len(data) - at), np.uint8).tobytes()
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst
