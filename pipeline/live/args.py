"""The live options of ``stylize-video`` (argparse only: importing this stays cheap, so ``--help`` is fast)."""

from __future__ import annotations

import argparse

from stylize_video.cliargs import number


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The live options. --codec/--crf/--preset/--bitrate/--gop/--max-frames/--duration/--stats-json are shared."""
    g = parser.add_argument_group("live video (cameras, streams, stdin/stdout, virtual camera)")
    g.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                   help="keep only the newest frame, drop late ones (default for cameras and network inputs)")
    g.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="never drop: a slow model slows the reader (default for files and stdin)")
    g.add_argument("--pace", action="store_true", help="release file frames at their timestamps, like a camera")
    g.add_argument("--speed", type=number(gt=0), default=1.0, help="pacing speed factor with --pace (default 1.0)")
    g.add_argument("--format", dest="output_format", help="output container (default from the extension or URL "
                   "scheme: mpegts for udp/tcp/srt and stdout, flv for rtmp)")
    g.add_argument("--input-format", help="force the input demuxer/device (e.g. mpegts, v4l2)")
    g.add_argument("--input-option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="FFmpeg option for opening the input (repeatable), e.g. video_size=1280x720")
    g.add_argument("--vcam", nargs="?", const="", default=None, metavar="DEVICE",
                   help="also (or only) send frames to a virtual camera; optional device, e.g. /dev/video2")
    g.add_argument("--vcam-backend", help="pyvirtualcam backend: v4l2loopback, obs, unitycapture")
    g.add_argument("--open-timeout", type=number(ge=0), default=30.0,
                   help="seconds to wait for a stream/peer (default 30)")
    g.add_argument("--read-timeout", type=number(ge=0), default=10.0, help="seconds of silence that end a live input")
