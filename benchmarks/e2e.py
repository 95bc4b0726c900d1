"""End-to-end figures on a real clip: each stage alone (decode, model, encode) and the full pipeline.

The slowest stage alone is the ceiling of the whole pipeline; the gap between that ceiling and the
full run is what the glue costs (colour conversion, host<->device copies, queues, muxing audio).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from stylize_video.benchmarks.quality import synthetic_frames
from stylize_video.benchmarks.timing import summarize, time_calls
from stylize_video.errors import StylizeError
from stylize_video.outfiles import fit_name
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.io.decode import park_frame_threads

# The encode ceiling keeps at most this many distinct decoded frames in memory and cycles them.
_ENCODE_FRAME_POOL = 30


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder of the encode-only ceiling and the plain transcode. ``options`` empty = the encoder's own
    defaults (x264: crf 23, medium); ``thread_type`` as the pipeline's file outputs (FRAME)."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = field(default_factory=dict)
    thread_type: str = "FRAME"

    @staticmethod
    def pipeline_default() -> EncodeSettings:
        """What ``stylize-video`` encodes with when given no encoder options (``stylize_video.pipeline.io.sink.EncoderOptions``)."""
        try:
            from stylize_video.pipeline.io.sink import EncoderOptions, FileSink
        except ImportError:
            return EncodeSettings()
        enc = EncoderOptions()
        options = dict(enc.extra)
        if enc.crf is not None:
            options["crf"] = str(enc.crf)
        if enc.preset:
            options["preset"] = enc.preset
        return EncodeSettings(codec=enc.codec or "libx264", pix_fmt=enc.pix_fmt or "yuv420p", options=options,
                              thread_type=FileSink.thread_type)


@dataclass
class StageResult:
    """One end-to-end figure. ``stage``: decode | model | encode | full."""

    stage: str
    status: str  # "ok" | "skipped" | "failed"
    reason: str | None = None
    frames: int = 0
    seconds: float | None = None
    fps: float | None = None
    ms_per_frame: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def timed(stage: str, frames: int, seconds: float, **detail: Any) -> StageResult:
        fps = frames / seconds if seconds > 0 else None
        return StageResult(stage, "ok", None, frames, seconds, fps, 1000.0 * seconds / frames if frames else None,
                           detail)


def ensure_clip(cache_dir: Path, width: int, height: int, frames: int, fps: int = 30) -> Path:
    """The synthetic benchmark clip, written once with ``stylize_video.pipeline.synth.make_test_clip`` and cached.

    Odd sides are rounded up to even: H.264 4:2:0 (the clip, and the plain transcode's output) needs even ones.
    """
    from stylize_video.pipeline.synth import make_test_clip

    width, height = width + width % 2, height + height % 2
    path = cache_dir / f"bench-clip_{width}x{height}_{frames}f_{fps}fps.mp4"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    # the container follows the suffix
    tmp = path.with_name(fit_name(path.stem, before=".", after=f".{os.getpid()}.partial.mp4", folder=cache_dir))
    # "gradient": smooth, moving, camera-like; "bars" would be trivial for x264 and "noise" its worst case.
    make_test_clip(tmp, width=width, height=height, frames=frames, fps=fps, audio=True, pattern="gradient")
    os.replace(tmp, path)
    return path


def probe_clip(clip: Path) -> dict[str, Any]:
    """Size, frame count and codec of the clip's first video stream; StylizeError if it is not a video."""
    try:
        with av.open(str(clip)) as container:
            if not container.streams.video:
                raise StylizeError(f"{clip} has no video stream")
            vs = container.streams.video[0]
            frames = vs.frames or sum(1 for packet in container.demux(vs) if packet.size)
            return {"path": str(clip), "width": vs.codec_context.width, "height": vs.codec_context.height,
                    "frames": int(frames), "codec": vs.codec_context.name,
                    "fps": float(vs.average_rate) if vs.average_rate else None,
                    "audio": bool(container.streams.audio)}
    except (av.error.FFmpegError, OSError) as exc:
        raise StylizeError(f"cannot read the clip {clip}: {exc}") from None


def decode_ceiling(clip: Path, max_frames: int) -> StageResult:
    """Demux + decode (FFmpeg frame threads on) + copy of the YUV planes into a host array.

    That is what the frame path takes from the decoder; YUV->RGB runs later, on the model's device,
    and is part of the full-pipeline figure only.
    """
    t0 = time.perf_counter()
    n = 0
    with av.open(str(clip)) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for frame in container.decode(vs):
            frame.to_ndarray()  # native planes, no colour conversion
            n += 1
            if n >= max_frames:
                break
        park_frame_threads(container)  # stopped early: frames in flight (see the pipeline's decode module)
    return StageResult.timed("decode", n, time.perf_counter() - t0, includes="demux, decode, YUV planes to host")


def _frame_pool(clip: Path, scale: int, count: int, pix_fmt: str) -> list[np.ndarray]:
    """Up to ``count`` decoded frames as ``pix_fmt`` arrays at the model's output size (bicubic for SR)."""
    pool: list[np.ndarray] = []
    with av.open(str(clip)) as container:
        for frame in islice(container.decode(video=0), count):
            if scale > 1:
                frame = frame.reformat(width=frame.width * scale, height=frame.height * scale, format=pix_fmt)
            pool.append(frame.to_ndarray(format=pix_fmt))
    return pool


def encode_ceiling(clip: Path, scale: int, frames: int, work_dir: Path, settings: EncodeSettings,
                   fps: int = 30) -> StageResult:
    """YUV host arrays -> VideoFrame -> encoder -> MP4 file, timed from the first frame to the closed file.

    Input frames are the clip's own frames at the model's output size, cycled. Stylized frames carry
    more texture than the clip, so the real encoder load is higher: this ceiling is optimistic.
    """
    pool = _frame_pool(clip, scale, min(frames, _ENCODE_FRAME_POOL), settings.pix_fmt)
    if not pool:
        return StageResult("encode", "failed", f"no frames decoded from {clip}")
    probe = av.VideoFrame.from_ndarray(pool[0], format=settings.pix_fmt)
    w, h = probe.width, probe.height
    out = work_dir / f".encode-ceiling.{os.getpid()}.mp4"
    try:
        t0 = time.perf_counter()
        with av.open(str(out), "w") as container:
            stream = container.add_stream(settings.codec, rate=fps, options=dict(settings.options))
            stream.width, stream.height, stream.pix_fmt = w, h, settings.pix_fmt
            stream.codec_context.thread_type = settings.thread_type
            for i, planes in enumerate(islice(cycle(pool), frames)):
                frame = av.VideoFrame.from_ndarray(planes, format=settings.pix_fmt)
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        seconds = time.perf_counter() - t0
        size_mb = out.stat().st_size / 2**20
    finally:
        out.unlink(missing_ok=True)
    return StageResult.timed("encode", frames, seconds, codec=settings.codec, pix_fmt=settings.pix_fmt,
                             options=dict(settings.options), width=w, height=h, output_mb=round(size_mb, 3),
                             includes="YUV frames from host arrays, encode, mux")


def plain_transcode(clip: Path, scale: int, max_frames: int, work_dir: Path, settings: EncodeSettings,
                    keep: Path | None = None) -> StageResult:
    """A plain PyAV decode -> encode of the clip with the pipeline's encoder settings: the frame path minus
    the model and everything around it (colour conversion, copies, queues). For SR models frames are
    scaled to the output size by swscale (bicubic) so that the encoder does the same work.

    ``full`` / ``plain`` is what the frame path costs on top of FFmpeg itself (issue 12: >= 0.85 with an
    identity model on 2 CPU cores). Timed from opening the clip to the closed output file, which is
    deleted unless ``keep`` names where it goes.
    """
    out = keep or work_dir / f".plain-transcode.{os.getpid()}.mp4"
    n = 0
    try:
        t0 = time.perf_counter()
        with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
            vs = src.streams.video[0]
            vs.thread_type = "AUTO"  # as stylize_video.pipeline.io.source.FileSource
            w, h = vs.codec_context.width * scale, vs.codec_context.height * scale
            rate = Fraction(vs.average_rate or 30)
            stream = dst.add_stream(settings.codec, rate=rate, options=dict(settings.options))
            stream.width, stream.height, stream.pix_fmt = w, h, settings.pix_fmt
            stream.codec_context.thread_type = settings.thread_type
            for frame in src.decode(vs):
                if scale > 1 or frame.format.name != settings.pix_fmt:
                    frame = frame.reformat(width=w, height=h, format=settings.pix_fmt, interpolation="BICUBIC")
                frame.pts, frame.time_base = n, 1 / rate  # a constant rate, as the input's nominal one
                # As ffmpeg does: the encoder picks its own frame types. A decoded frame keeps the source's
                # I/P/B type, and libx264 would follow it, skipping its own (costly) frame-type decisions
                # that the pipeline's frames (type NONE) go through.
                frame.pict_type = av.video.frame.PictureType.NONE
                dst.mux(stream.encode(frame))
                n += 1
                if n >= max_frames:
                    break
            park_frame_threads(src)
            dst.mux(stream.encode(None))
        seconds = time.perf_counter() - t0
    finally:
        if keep is None:
            out.unlink(missing_ok=True)
    return StageResult.timed("plain", n, seconds, codec=settings.codec, options=dict(settings.options),
                             thread_type=settings.thread_type, includes="open, decode, encode, mux (no model, "
                             "no colour conversion, no copies)")


def model_ceiling(backend: Backend, width: int, height: int, iters: int, warmup: int, seed: int = 0) -> StageResult:
    """The model alone at the clip's size, batch 1, input already on the device (see model_bench)."""
    x = synthetic_frames(1, height, width, seed).to(backend.device)
    with torch.inference_mode():
        timing = time_calls(lambda: backend(x), backend.device, iters, warmup)
    stats = summarize(timing.samples_ms)
    seconds = stats.median_ms * iters / 1000.0
    return StageResult.timed("model", iters, seconds, backend=getattr(backend, "name", None),
                             precision=getattr(backend, "precision", None), device=str(backend.device),
                             timer=timing.timer, p95_ms=stats.p95_ms,
                             includes="model forward only, frames already on the device")


def name_bottleneck(stages: list[StageResult]) -> str | None:
    """The slowest of the stage-alone ceilings (decode, model, encode) that were measured."""
    alone = [s for s in stages if s.stage in ("decode", "model", "encode") and s.status == "ok" and s.fps]
    return min(alone, key=lambda s: s.fps or 0.0).stage if alone else None


def run_full(runner: Callable[[Path, Path], dict[str, Any]], clip: Path, work_dir: Path) -> StageResult:
    """The whole pipeline file-to-file: ``runner(src, dst) -> {"frames": n, ...}``; output deleted after.

    Timed around the call: opening both files, decode, colour conversion, host<->device copies, model,
    encode and audio muxing are all inside; loading the model is not (the backend comes in warm).
    """
    out = work_dir / f".e2e-full.{os.getpid()}.mp4"
    try:
        t0 = time.perf_counter()
        detail = dict(runner(clip, out))
        seconds = time.perf_counter() - t0
    finally:
        out.unlink(missing_ok=True)
    frames = int(detail.pop("frames"))
    return StageResult.timed("full", frames, seconds, includes="open, decode, convert, copies, model, encode, mux",
                             **detail)
