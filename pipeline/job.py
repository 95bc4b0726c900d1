"""One file-to-file job: wire a FileSource, a FrameProcessor and a FileSink together and run them.

``stylize_file`` is what ``stylize-video`` calls and what the benchmarks and the ``Stylizer`` API
can call with an already-loaded ``Backend`` (e.g. a test-only identity network).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.backends.base import Backend
from pipeline.io.planes import PlaneLayout
from pipeline.io.sink import EncoderOptions, FileSink, VideoSpec, check_output, choose_pix_fmt
from pipeline.io.source import FileSource, FileSourceOptions
from pipeline.processor import FrameProcessor, ProcessorConfig
from pipeline.runner import Runner, RunStats, input_plan
from train.errors import StylizeError


@dataclass
class JobOptions:
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    source: FileSourceOptions = field(default_factory=FileSourceOptions)
    overwrite: bool = False
    apply_rotation: bool = False
    progress: bool = True
    queue_size: int = 4


def _rotation_plan(rotation: int, apply: bool) -> tuple[int, int]:
    """(degrees to rotate pixels, degrees to tag on the output)."""
    rotation %= 360
    if not rotation:
        return 0, 0
    if apply and rotation % 90 == 0:
        return rotation, 0
    if apply:
        warnings.warn(f"rotation {rotation} is not a multiple of 90 degrees; carried as metadata", stacklevel=3)
    return 0, rotation


def stylize_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], backend: Backend,
                 options: JobOptions | None = None) -> RunStats:
    """Process ``src`` into ``dst`` with ``backend``; raises ``StylizeError`` on bad input/output."""
    opts = options or JobOptions()
    dst = Path(dst)
    check_output(dst, opts.overwrite)  # before decoding anything
    if Path(src).resolve() == dst.resolve():
        raise StylizeError("output would overwrite the input")
    source = FileSource(src, opts.source)
    try:
        info = source.info
        if info.interlaced:
            warnings.warn("interlaced input: frames are processed as progressive frames (no deinterlacing)",
                          stacklevel=2)
        in_fmt, colour_in, reformat = input_plan(info.pix_fmt, info.colour)
        rotate, tag = _rotation_plan(info.rotation, opts.apply_rotation)
        w, h = (info.height, info.width) if rotate in (90, 270) else (info.width, info.height)
        check = getattr(backend, "check_input", None)  # engines with a shape profile refuse early
        if check is not None:
            check((1, 3, h, w))
        scale = backend.scale or 1
        out_w, out_h = w * scale, h * scale
        out_fmt = choose_pix_fmt(opts.encoder.codec, in_fmt, out_w, out_h, opts.encoder.pix_fmt)
        try:
            out_layout = PlaneLayout(out_fmt, out_w, out_h)
            out_layout.spec  # noqa: B018 - raises for formats we cannot pack
        except ValueError:
            raise StylizeError(f"--pix-fmt {out_fmt} is not supported; use a planar YUV format such as yuv420p") from None
        colour_out = colour_in
        config = ProcessorConfig(PlaneLayout(in_fmt, info.width, info.height), out_layout, colour_in, colour_out,
                                 rotate_ccw=rotate)
        spec = VideoSpec(out_w, out_h, out_fmt, info.time_base, info.rate, colour_out, rotation=tag)
        sink = FileSink(dst, opts.encoder, overwrite=opts.overwrite)
        runner = Runner(source, FrameProcessor(backend, config), sink, spec, reformat=reformat,
                        queue_size=opts.queue_size, progress=opts.progress)
        return runner.run()
    finally:
        source.close()
