"""Live-mode command line: the options ``stylize-video`` gains, and a standalone ``python -m pipeline.live``.

``add_live_arguments`` + ``wants_live`` + ``run_from_args`` are the hooks for ``pipeline/cli.py``
(see INTEGRATION.md); ``main`` runs the same code on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.live.encoding import LiveEncoderConfig
from pipeline.live.inputs import InputSpec, parse_input
from pipeline.live.latency import LiveReport
from pipeline.live.loop import LiveConfig, run_live, write_stats_json
from pipeline.live.outputs import OutputSpec, parse_output
from pipeline.live.sinks import FrameSink, StreamSink, TeeSink, VirtualCameraSink
from pipeline.live.source import FrameReader
from train.errors import StylizeError, run_cli


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """Options only the live path has. The shared ones (--codec, --crf, --preset, --bitrate, --gop,
    --max-frames, --duration, --stats-json) are ``stylize-video``'s own and read from the same namespace."""
    g = parser.add_argument_group("live video (cameras, streams, virtual camera)")
    g.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                   help="keep only the newest frame, drop late ones (default for cameras and network inputs)")
    g.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="never drop: a slow model slows the reader (default for files and stdin)")
    g.add_argument("--pace", action="store_true", help="release file frames at their timestamps, like a camera")
    g.add_argument("--speed", type=float, default=1.0, help="pacing speed factor with --pace (default 1.0)")
    g.add_argument("--format", dest="output_format", help="output container (default from the URL scheme: "
                   "mpegts for udp/tcp/srt and stdout, flv for rtmp)")
    g.add_argument("--input-format", help="force the input demuxer/device (e.g. mpegts, v4l2)")
    g.add_argument("--input-option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="FFmpeg option for opening the input (repeatable), e.g. video_size=1280x720")
    g.add_argument("--vcam", nargs="?", const="", default=None, metavar="DEVICE",
                   help="also (or only) send frames to a virtual camera; optional device, e.g. /dev/video2")
    g.add_argument("--vcam-backend", help="pyvirtualcam backend: v4l2loopback, obs, unitycapture")
    g.add_argument("--open-timeout", type=float, default=30.0, help="seconds to wait for a stream/peer (default 30)")
    g.add_argument("--read-timeout", type=float, default=10.0, help="seconds of silence that end a live input")


def add_shared_arguments(parser: argparse.ArgumentParser) -> None:
    """The encoder/selection options ``stylize-video`` already has, for the standalone parser only."""
    g = parser.add_argument_group("encoder and selection")
    g.add_argument("--codec", default="auto", help="auto (h264_nvenc on GPU if it opens, else libx264), libx264, "
                   "h264_nvenc, hevc_nvenc, libx265")
    g.add_argument("--crf", type=int, help="constant quality")
    g.add_argument("--preset", help="encoder preset (default: veryfast for x264, p1 for NVENC)")
    g.add_argument("--bitrate", help="target bit rate with a 1 s VBV, e.g. 4M (default: quality mode)")
    g.add_argument("--gop", type=int, help="keyframe interval in frames (default: 1 s)")
    g.add_argument("--max-frames", type=int, help="stop after this many output frames")
    g.add_argument("--duration", type=float, help="stop after this many seconds")
    g.add_argument("--stats-json", metavar="PATH", help="write frame counts, drops and latency percentiles here")


def parse_bitrate(text: str | None) -> int | None:
    """``"4M"`` -> 4_000_000; plain numbers are bits/s."""
    if text is None:
        return None
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:].lower(), 1.0)
    try:
        value = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        raise StylizeError(f"--bitrate: expected e.g. 4M or 2500k, got {text!r}") from None
    if value <= 0:
        raise StylizeError(f"--bitrate must be > 0, got {text!r}")
    return int(value)


def encoder_config(args: argparse.Namespace) -> LiveEncoderConfig:
    """Live encoder settings from the shared options; user --preset/--crf override the low-latency preset."""
    extra = {}
    if getattr(args, "preset", None):
        extra["preset"] = args.preset
    if getattr(args, "crf", None) is not None:
        extra["crf"] = str(args.crf)
    return LiveEncoderConfig(codec=getattr(args, "codec", None) or "auto", bitrate=parse_bitrate(
        getattr(args, "bitrate", None)), gop_frames=getattr(args, "gop", None), extra_options=extra or None)


@dataclass
class LivePlan:
    """What a live invocation will do, resolved from the arguments."""

    input: InputSpec
    output: OutputSpec | None
    realtime: bool


def wants_live(input_arg: str, output_arg: str | None, args: argparse.Namespace) -> bool:
    """True when the live path should handle this run rather than the file pipeline: stdin/stdout, a device
    or URL (``x:…`` that is not an existing path, e.g. not ``C:\\clip.mp4``), no output, or a live flag."""
    live_in = input_arg == "-" or (":" in input_arg and not Path(input_arg).exists())
    live_out = output_arg is None or output_arg == "-" or "://" in output_arg
    return bool(live_in or live_out or args.vcam is not None or args.realtime or args.pace)


def plan(input_arg: str, output_arg: str | None, args: argparse.Namespace) -> LivePlan:
    spec = parse_input(input_arg, input_format=args.input_format, options=dict(args.input_option))
    out = parse_output(output_arg, output_format=args.output_format) if output_arg else None
    if out is None and args.vcam is None:
        raise StylizeError("no output: give OUTPUT (file, URL or -) and/or --vcam")
    if args.pace and spec.live:
        raise StylizeError("--pace is for files; live inputs already arrive in real time")
    realtime = spec.live if args.realtime is None else args.realtime
    return LivePlan(spec, out, realtime)


def build_sink(p: LivePlan, args: argparse.Namespace, *, fps: float, prefer_gpu: bool) -> FrameSink:
    sinks: list[FrameSink] = []
    if p.output is not None:
        sinks.append(StreamSink(p.output, fps=fps, encoder=encoder_config(args), prefer_gpu=prefer_gpu, open_timeout=args.open_timeout))
    if args.vcam is not None:
        sinks.append(VirtualCameraSink(fps=fps, device=args.vcam or None, backend=args.vcam_backend))
    return sinks[0] if len(sinks) == 1 else TeeSink(sinks)


def run_from_args(stylizer, input_arg: str, output_arg: str | None, args: argparse.Namespace) -> LiveReport:
    """Run the live loop for parsed arguments with a loaded ``Stylizer``; prints the summary on stderr."""
    p = plan(input_arg, output_arg, args)
    reader = FrameReader(p.input, pace=args.pace, speed=args.speed,
                         open_timeout=args.open_timeout, read_timeout=args.read_timeout)
    try:
        sink = build_sink(p, args, fps=reader.fps, prefer_gpu=stylizer.device.type == "cuda")
    except BaseException:
        reader.stop()
        raise
    config = LiveConfig(realtime=p.realtime, max_frames=getattr(args, "max_frames", None),
                        duration_s=getattr(args, "duration", None))
    report = run_live(reader, stylizer, sink, config)
    if not getattr(args, "quiet", False):
        print(f"stylize-video: {report.summary_line()}", file=sys.stderr)  # stdout may be the stream
    if getattr(args, "stats_json", None):
        write_stats_json(report, args.stats_json, extra={"input": input_arg, "output": output_arg,
                                                         "backend": stylizer.name, "device": str(stylizer.device)})
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.live",
                                     description="Stylize live video: cameras, network streams, stdin/stdout, "
                                                 "virtual camera.")
    parser.add_argument("input", help="file, -, v4l2:/dev/video0, avfoundation:0, dshow:video=NAME, or a URL")
    parser.add_argument("output", nargs="?", help="file, -, udp://, tcp://, srt://, rtmp:// (optional with --vcam)")
    parser.add_argument("--model", required=True, help="engine (.plan), ONNX model or checkpoint")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default=None)
    add_shared_arguments(parser)
    add_live_arguments(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    from pipeline.stylizer import Stylizer

    args = build_parser().parse_args(argv)
    plan(args.input, args.output, args)  # validate before the (slow) model load
    with Stylizer.load(args.model, backend=args.backend, device=args.device, precision=args.precision) as stylizer:
        run_from_args(stylizer, args.input, args.output, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("stylize-video", _main, argv)
