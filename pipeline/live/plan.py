"""From ``stylize-video`` arguments to a ``Source`` and a ``Sink``: files, cameras, URLs, stdin/stdout, virtual camera.

``stylize_video.pipeline.live.args.add_live_arguments`` adds the live options to the parser; ``plan_io`` validates the input and output specs
(cheap, before a model is loaded); ``make_sink`` and ``open_source`` build the two ends that
``stylize_video.pipeline.job.stylize`` connects through the one frame path (``Runner`` + ``FrameProcessor``).
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from dataclasses import dataclass

import torch
from stylize_video.errors import StylizeError
from stylize_video.outfiles import check_distinct
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions
from stylize_video.pipeline.io.sink import EncoderOptions, FileSink, Sink
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions, Source
from stylize_video.pipeline.live.encoding import AUTO
from stylize_video.pipeline.live.inputs import InputSpec, parse_input
from stylize_video.pipeline.live.outputs import OutputSpec, parse_output

# files: the container's default (VP9 for WebM, H.264 elsewhere: stylize_video.pipeline.io.containers)
DEFAULT_FILE_CODEC = None


@dataclass(frozen=True)
class IOPlan:
    """The two ends of a run, resolved from the arguments."""

    input: InputSpec
    output: OutputSpec | None  # None: --vcam only
    realtime: bool

    @property
    def live_input(self) -> bool:
        return self.input.live


def plan_io(args: argparse.Namespace) -> IOPlan:
    """Parse and check INPUT / OUTPUT and the live flags; raises ``StylizeError`` with one line."""
    spec = parse_input(args.input, input_format=args.input_format, options=dict(args.input_option))
    out = parse_output(args.output, output_format=args.output_format) if args.output else None
    if out is None and args.vcam is None:
        raise StylizeError("no output: give OUTPUT (a file, a stream URL or -) and/or --vcam")
    if spec.live and args.pace:
        raise StylizeError("--pace is for files; live inputs already arrive in real time")
    if spec.kind not in ("file", "stdin") and args.start:  # (stdin is read from its start: LiveSource)
        raise StylizeError(f"--start needs a file or stdin input; {args.input} is a live {spec.kind} input, which "
                           "starts where it is now (use --duration or --max-frames to end it)")
    # an output that is an input (the video, a model file) or that another output names (--json): refused now
    check_distinct(inputs=[("", spec.target if spec.kind == "file" else None),
                           *((f"--{flag}", getattr(args, flag, None)) for flag in ("engine", "onnx", "checkpoint"))],
                   outputs=[("output", out.target if out is not None and out.kind == "file" else None),
                            ("--json", getattr(args, "json", None))])
    # A paced file stands in for a camera, so it gets a camera's default: keep the newest frame.
    realtime = (spec.live or bool(args.pace)) if args.realtime is None else args.realtime
    return IOPlan(spec, out, realtime)


def encoder_options(args: argparse.Namespace, codec: str | None) -> EncoderOptions:
    return EncoderOptions(codec=args.codec or codec, crf=args.crf, preset=args.preset, bitrate=args.bitrate,
                          pix_fmt=args.pix_fmt, gop=args.gop)


def make_sink(io: IOPlan, args: argparse.Namespace, device: torch.device) -> Sink:
    """File, stream or stdout sink for OUTPUT, plus the virtual camera with --vcam (a ``TeeSink`` for both).

    Codec default: the container's for files (VP9 for WebM, libx264 elsewhere); for streams ``auto`` = h264_nvenc when the model runs on CUDA and
    NVENC opens here, else libx264, with the low-latency settings of ``stylize_video.pipeline.live.encoding``.
    """
    sinks: list[Sink] = []
    if io.output is not None and io.output.kind == "file":
        sinks.append(FileSink(io.output.target, encoder_options(args, DEFAULT_FILE_CODEC), overwrite=args.overwrite,
                              format=io.output.format))
    elif io.output is not None:
        from stylize_video.pipeline.live.sinks import StreamSink

        sinks.append(StreamSink(io.output, encoder_options(args, AUTO), prefer_gpu=device.type == "cuda",
                                open_timeout=args.open_timeout))
    if args.vcam is not None:
        from stylize_video.pipeline.live.vcam import VirtualCameraSink

        sinks.append(VirtualCameraSink(device=args.vcam or None, backend=args.vcam_backend, convert_device=device))
    if len(sinks) == 1:
        return sinks[0]
    from stylize_video.pipeline.live.sinks import TeeSink

    return TeeSink(sinks)


def open_source(io: IOPlan, args: argparse.Namespace, device: torch.device | None = None) -> Source:
    """``FileSource`` for files (NVDEC with --hwdec, on ``device``'s GPU), ``LiveSource`` for the rest;
    ``PacedSource`` with --pace."""
    gpu = (device.index or 0) if device is not None and device.type == "cuda" else 0
    opts = FileSourceOptions(start=args.start, duration=args.duration, max_frames=args.max_frames, hwdec=args.hwdec,
                             hwdec_device=gpu, copy_audio=not args.no_audio, copy_subtitles=not args.no_subtitles,
                             video_stream=args.video_stream,
                             deinterlace=DeinterlaceOptions(args.deinterlace, args.deinterlace_rate))
    plain_file = io.input.kind == "file" and io.input.format is None and not io.input.options
    if plain_file:
        source: Source = FileSource(io.input.target, opts)
    else:
        from stylize_video.pipeline.live.source import LiveSource

        if args.hwdec:
            warnings.warn("--hwdec applies to plain file inputs; this input is decoded on the CPU", stacklevel=2)
        opts = dataclasses.replace(opts, hwdec=False, thread_type="SLICE" if io.input.live else "AUTO")
        source = LiveSource(io.input, opts, open_timeout=args.open_timeout, read_timeout=args.read_timeout)
    if args.pace:
        from stylize_video.pipeline.live.source import PacedSource

        source = PacedSource(source, args.speed)
    return source
