"""One job: plan the frame path for a ``Source`` and a ``Sink``, then run it with a ``Runner``.

``stylize`` runs any source into any sink (files, cameras, network streams, stdout, virtual camera);
``stylize_file`` is the file-to-file case that the benchmarks and the API call with an already-loaded
``Backend`` (e.g. a test-only identity network). ``stylize-video`` builds its source and sink from the
command line (``stylize_video.pipeline.cli``, ``stylize_video.pipeline.live.plan``) and calls ``stylize``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import av
from stylize_video.cliargs import write_json
from stylize_video.errors import StylizeError
from stylize_video.outfiles import check_distinct
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.io.planes import FORMATS, PlaneLayout
from stylize_video.pipeline.io.sink import EncoderOptions, FileSink, Sink, VideoSpec, check_output
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions, Source
from stylize_video.pipeline.processor import FrameProcessor, ProcessorConfig
from stylize_video.pipeline.runner import Runner
from stylize_video.pipeline.sizing import with_size_rules
from stylize_video.pipeline.stats import RunStats


@dataclass
class JobOptions:
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    source: FileSourceOptions = field(default_factory=FileSourceOptions)
    overwrite: bool = False
    apply_rotation: bool = False
    progress: bool = True
    queue_size: int = 4
    realtime: bool = False  # keep the newest frame, drop late ones (video only)
    interrupt_is_end: bool = False  # live inputs: Ctrl-C ends the run with complete outputs
    match_histogram: bool = False  # SR models only: each output frame's histogram matched to its input frame


def input_plan(pix_fmt: str, colour: ColourInfo) -> tuple[str, ColourInfo, dict | None]:
    """(layout pix_fmt, colour of those planes, swscale reformat kwargs or None) for decoded frames.

    Formats without a packed layout (RGB, 4:1:1, paletted, ...) are converted once per frame by
    swscale with coefficients we state explicitly: BT.709 full-range 4:4:4, which loses nothing
    the 8/10-bit source had.
    """
    if pix_fmt in FORMATS:
        return pix_fmt, colour, None
    desc = av.VideoFormat(pix_fmt)
    deep = any(c.bits > 8 for c in desc.components)
    target = "yuv444p10le" if deep else "yuv444p"
    kwargs = {"format": target, "dst_colorspace": "itu709", "dst_color_range": "JPEG"}
    if not desc.is_rgb:
        space, rng = colour.sws
        kwargs |= {"src_colorspace": space, "src_color_range": rng}
    warnings.warn(f"input pixel format {pix_fmt} is converted to {target} by swscale first", stacklevel=2)
    return target, ColourInfo("bt709", True, 1, colour.primaries, colour.trc), kwargs


def _kept_field_order(info: object) -> int | None:
    """The input's field order when its interlaced frames reach the encoder as they are (not deinterlaced)."""
    if getattr(info, "interlaced", False) and not getattr(info, "deinterlace", None):
        return getattr(info, "field_order", None)
    return None


def check_match_histogram(enabled: bool, scale: int | None) -> None:
    """Refuse histogram matching for a model that keeps the frame size: it is the paper's SR
    post-process, and on a style-transfer output it would pull the colours back to the input's."""
    if enabled and (scale or 1) == 1:
        raise StylizeError("--match-histogram is for super-resolution models; this model keeps the frame size "
                           "(scale 1)")


def rotation_plan(rotation: int, apply: bool) -> tuple[int, int]:
    """(degrees to rotate pixels, degrees to tag on the output) for a stream tagged ``rotation`` degrees."""
    rotation %= 360
    if not rotation:
        return 0, 0
    if apply and rotation % 90 == 0:
        return rotation, 0
    if apply:
        warnings.warn(f"rotation {rotation} is not a multiple of 90 degrees; carried as metadata", stacklevel=3)
    return 0, rotation


def stylize(source: Source, sink: Sink, backend: Backend, options: JobOptions | None = None) -> RunStats:
    """Process ``source`` into ``sink`` with ``backend``. The sink is closed (or aborted); the source is not."""
    opts = options or JobOptions()
    backend = with_size_rules(backend)  # any frame size: padded to the model's size rules, cropped back
    info = source.info
    if info.interlaced and not getattr(info, "deinterlace", None):
        warnings.warn("interlaced input: frames are processed as decoded, combing included (--deinterlace off)",
                      stacklevel=2)
    if opts.realtime and source.passthrough:
        warnings.warn("realtime mode carries video only: audio/subtitle streams are not copied", stacklevel=2)
    in_fmt, colour_in, reformat = input_plan(info.pix_fmt, info.colour)
    rotate, tag = rotation_plan(info.rotation, opts.apply_rotation)
    w, h = (info.height, info.width) if rotate in (90, 270) else (info.width, info.height)
    check = getattr(backend, "check_input", None)  # engines with a shape profile refuse early
    if check is not None:
        check((1, 3, h, w))
    check_match_histogram(opts.match_histogram, backend.scale)
    scale = backend.scale or 1
    out_w, out_h = w * scale, h * scale
    out_fmt = sink.choose_pix_fmt(in_fmt, out_w, out_h)
    try:
        out_layout = PlaneLayout(out_fmt, out_w, out_h)
        out_layout.spec  # noqa: B018 - raises for formats we cannot pack
    except ValueError:
        raise StylizeError(f"--pix-fmt {out_fmt} is not supported; use a planar YUV format such as yuv420p") from None
    colour_out = colour_in
    config = ProcessorConfig(PlaneLayout(in_fmt, info.width, info.height), out_layout, colour_in, colour_out,
                             rotate_ccw=rotate, match_histogram=opts.match_histogram)
    spec = VideoSpec(out_w, out_h, out_fmt, info.time_base, info.rate, colour_out, rotation=tag,
                     start=getattr(info, "start", None), origin=getattr(info, "origin", None),
                     field_order=_kept_field_order(info))
    runner = Runner(source, FrameProcessor(backend, config), sink, spec, reformat=reformat,
                    queue_size=opts.queue_size, progress=opts.progress, realtime=opts.realtime,
                    interrupt_is_end=opts.interrupt_is_end)
    return runner.run()


def stylize_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], backend: Backend,
                 options: JobOptions | None = None) -> RunStats:
    """Process ``src`` into ``dst`` with ``backend``; raises ``StylizeError`` on bad input/output."""
    opts = options or JobOptions()
    dst = Path(dst)
    check_output(dst, opts.overwrite)  # before decoding anything
    check_distinct(inputs=[("", src)], outputs=[("output", dst)])
    source = FileSource(src, opts.source)
    try:
        return stylize(source, FileSink(dst, opts.encoder, overwrite=opts.overwrite), backend, opts)
    finally:
        source.close()


def save_stats(stats: RunStats, path: str | Path, extra: dict | None = None, *, partial: bool = False,
               overwrite: bool = False) -> str | Path:
    """Write ``stats`` (plus ``extra`` keys) as JSON to ``path`` atomically, or to stdout for ``-``; returns where.
    ``partial``: an interrupted run's, written beside ``path`` as ``s.partial.json`` (``cliargs.write_json``)."""
    return write_json({**(extra or {}), **stats.to_dict()}, path, partial=partial, overwrite=overwrite)
