"""Live-mode command line: the options ``stylize-video`` gains, and a standalone ``python -m pipeline.live``.

``add_live_arguments`` + ``wants_live`` + ``run_from_args`` are the hooks for ``pipeline/cli.py``
(see INTEGRATION.md); ``main`` runs the same code on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

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
    """The live/real-time option group (names chosen not to clash with the file pipeline's)."""
    g = parser.add_argument_group("live video")
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
    g.add_argument("--live-codec", default="auto", help="live encoder: auto (h264_nvenc on GPU if it opens, "
                   "else libx264), libx264, h264_nvenc, hevc_nvenc, libx265")
    g.add_argument("--bitrate", type=float, help="live bitrate in Mbit/s with a 1 s VBV (default: quality mode)")
    g.add_argument("--gop", type=float, default=1.0, help="keyframe interval in seconds (default 1)")
    g.add_argument("--open-timeout", type=float, default=30.0, help="seconds to wait for a stream/peer (default 30)")
    g.add_argument("--read-timeout", type=float, default=10.0, help="seconds of silence that end a live input")
    g.add_argument("--max-frames", type=int, help="stop after this many output frames")
    g.add_argument("--duration", type=float, help="stop after this many seconds")


@dataclass
class LivePlan:
    """What a live invocation will do, resolved from the arguments."""

    input: InputSpec
    output: OutputSpec | None
    realtime: bool


def wants_live(input_arg: str, output_arg: str | None, args: argparse.Namespace) -> bool:
    """True when the live path should handle this run rather than the file pipeline."""
    live_in = input_arg == "-" or ":" in input_arg and not _is_plain_path(input_arg)
    live_out = output_arg is None or output_arg == "-" or "://" in output_arg
    return bool(live_in or live_out or args.vcam is not None or args.realtime or args.pace)


def _is_plain_path(text: str) -> bool:
    from pathlib import Path
    return Path(text).exists()


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
        enc = LiveEncoderConfig(codec=args.live_codec, gop_seconds=args.gop,
                                bitrate=int(args.bitrate * 1e6) if args.bitrate else None)
        sinks.append(StreamSink(p.output, fps=fps, encoder=enc, prefer_gpu=prefer_gpu, open_timeout=args.open_timeout))
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
    config = LiveConfig(realtime=p.realtime, max_frames=args.max_frames, duration_s=args.duration)
    report = run_live(reader, stylizer, sink, config)
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
    parser.add_argument("--stats-json", help="write frame counts, drops and latency percentiles here")
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
