"""``stylize-video IN [OUT] (--engine X.plan | --onnx X.onnx | --checkpoint X.pth | --style NAME) [options]``.

IN: a file, ``-`` (stdin), a camera (``v4l2:/dev/video0``) or a stream URL; OUT: a file, ``-`` (stdout) or a
stream URL, and/or ``--vcam``. Every combination runs the same frame path (``stylize_video.pipeline.job.stylize``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from stylize_video import cliargs
from stylize_video.errors import StylizeError, run_cli

PROG = "stylize-video"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Stylize or super-resolve a video with a feed-forward network.")
    cliargs.add_version_option(p)
    p.add_argument("input", help="input video file, - (stdin), a camera (v4l2:/dev/video0, avfoundation:0, "
                   "dshow:video=NAME) or a stream URL (udp://, tcp://, srt://, rtmp://, rtsp://, http://)")
    p.add_argument("output", nargs="?", help="output video (.mp4, .mkv, .mov, .webm), - (stdout) or a stream URL "
                   "(udp://, tcp://, srt://, rtmp://); optional with --vcam")
    add_model_arguments(p)
    add_runtime_arguments(p)
    add_encoder_arguments(p)
    add_selection_arguments(p)
    add_output_arguments(p)
    from stylize_video.pipeline.live.args import add_live_arguments  # argparse only: --help stays fast

    add_live_arguments(p)
    return p


# The option groups below are shared with other console scripts that run the same frame path (e.g. a batch
# runner): one definition of each flag, so their names, defaults and checks cannot drift apart.


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """--engine / --onnx / --checkpoint / --style (exactly one)."""
    m = p.add_argument_group("model (one of)").add_mutually_exclusive_group(required=True)
    m.add_argument("--engine", metavar="PLAN", help="TensorRT engine built by stylize-export")
    m.add_argument("--onnx", metavar="ONNX", help="ONNX model (float images in and out; see --value-range, "
                   "--layout, --channel-order)")
    m.add_argument("--checkpoint", metavar="PTH", help="stylize-train checkpoint, pytorch/examples .pth, or any "
                   "architecture spandrel detects (Real-ESRGAN, SwinIR, HAT, ... as .pth or .safetensors)")
    m.add_argument("--style", metavar="NAME", help="a style from the export registry (stylize-export list)")
    c = p.add_argument_group("ONNX models without stylize-video metadata (ours record theirs; default NCHW RGB "
                             "0-255)")
    c.add_argument("--value-range", choices=("0-255", "0-1"), help="range of the model's float input and output")
    c.add_argument("--layout", choices=("nchw", "nhwc"), help="tensor layout of the model's input and output")
    c.add_argument("--channel-order", choices=("rgb", "bgr"), help="channel order of the model's input and output")


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--backend, --device, --precision, --compile[-mode], --hwdec, --queue-size."""
    r = p.add_argument_group("runtime")
    r.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime", "torch"])
    cliargs.add_device_option(r)
    r.add_argument("--precision", choices=["fp16", "fp32"], default=None,
                   help="default: fp16 on CUDA, fp32 on the CPU")
    r.add_argument("--compile", action="store_true", help="torch.compile the network (torch backend)")
    r.add_argument("--compile-mode", choices=COMPILE_MODE_CHOICES, default=None,
                   help="torch.compile mode (implies --compile); default max-autotune on CUDA (long first compile), "
                   "reduce-overhead skips autotuning (compiles sooner), still with CUDA graphs")
    r.add_argument("--hwdec", action="store_true", help="decode with NVDEC (CUDA)")
    r.add_argument("--queue-size", type=cliargs.integer(ge=1), default=4, help="frames in flight between stages (default 4)")
    r.add_argument("--tile", type=cliargs.integer(ge=1), metavar="SIZE", help="run the model on SIZE x SIZE tiles of each frame "
                   "(frames too large for GPU memory or for a fixed-size engine); seams are feathered")
    r.add_argument("--tile-overlap", type=cliargs.integer(ge=0), metavar="PX", help="input pixels shared by neighbouring tiles (default "
                   "32, at most SIZE/4); output equals the untiled one where PX/4 covers the receptive field")
    r.add_argument("--tile-batch", type=cliargs.integer(ge=1), default=4, metavar="N", help="tiles per backend call (default 4)")


def add_encoder_arguments(p: argparse.ArgumentParser) -> None:
    """--codec, --crf, --preset, --bitrate, --pix-fmt, --gop."""
    e = p.add_argument_group("encoder")
    e.add_argument("--codec", default=None, help="default: libvpx-vp9 for .webm, libx264 for other files; for streams h264_nvenc when the model "
                   "runs on CUDA and NVENC opens, else libx264 (low-latency settings). Also libx265, hevc_nvenc, ...")
    e.add_argument("--crf", type=cliargs.integer(ge=0), help="constant quality: x264/x265 0-51 (default 23/28), VP9/AV1 "
                   "0-63 (checked against the encoder before any work)")
    e.add_argument("--preset", help="encoder preset, e.g. medium, fast, p4 (NVENC)")
    e.add_argument("--bitrate", help="target bit rate, e.g. 8M")
    e.add_argument("--pix-fmt", help="output pixel format (default: like the input; 10-bit kept where possible)")
    e.add_argument("--gop", type=cliargs.integer(ge=1), help="keyframe interval in frames")


def add_selection_arguments(p: argparse.ArgumentParser) -> None:
    """--start, --duration, --max-frames, --video-stream; --deinterlace, --deinterlace-rate."""
    s = p.add_argument_group("selection")
    s.add_argument("--start", type=cliargs.number(ge=0), help="start at this time (seconds)")
    s.add_argument("--duration", type=cliargs.number(gt=0), help="process this many seconds")
    s.add_argument("--max-frames", type=cliargs.integer(ge=1), help="stop after this many frames")
    s.add_argument("--video-stream", type=cliargs.integer(ge=0), metavar="N", help="process input stream N (the index ffprobe "
                   "prints as Stream #0:N); default: the stream FFmpeg picks (attached pictures never)")
    d = p.add_argument_group("interlaced input")
    d.add_argument("--deinterlace", choices=DEINTERLACE_MODES, default="auto",
                   help="auto (default): frames flagged interlaced go through FFmpeg's bwdif; bwdif/yadif: every "
                   "frame; off: frames are processed as decoded")
    d.add_argument("--deinterlace-rate", choices=DEINTERLACE_RATES, default="frame",
                   help="frame (default): one output frame per input frame; field: one per field (double rate)")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """--overwrite, --apply-rotation, --no-audio, --no-subtitles, --json (alias --stats-json), --match-histogram,
    -q/--quiet."""
    o = p.add_argument_group("output")
    cliargs.add_overwrite_option(o, help="replace an existing output (the video and the --json file)")
    o.add_argument("--apply-rotation", action="store_true",
                   help="rotate the pixels upright instead of carrying the rotation metadata")
    o.add_argument("--no-audio", action="store_true", help="do not copy audio streams")
    o.add_argument("--no-subtitles", action="store_true", help="do not copy subtitle streams")
    cliargs.add_json_option(o, positional_free=False, aliases=("--stats-json",),
                            help="write the run summary as JSON to PATH (- for stdout, unless the video goes there); "
                            "PATH is checked before the run; should writing it still fail after the run (disk "
                            "full), the finished video is kept and the exit status is 1")
    o.add_argument("--match-histogram", action="store_true", help="super-resolution models only: match each "
                   "output frame's per-channel histogram to its input frame (the paper's SR post-process)")
    cliargs.add_quiet_option(o)


def _resolve_model(args: argparse.Namespace, precision: str) -> str:
    if args.style:
        from stylize_video.pipeline.styles import resolve_style

        return str(resolve_style(args.style, args.backend, precision))
    from stylize_video.pipeline.backends import model_kind

    for flag, kind in _KIND_OF_FLAG.items():
        path = getattr(args, flag)
        if path is not None:
            found = model_kind(path)
            if found != kind:
                other = next(f for f, k in _KIND_OF_FLAG.items() if k == found)
                raise StylizeError(f"--{flag} expects {_ARTICLE[kind]}; {path} is {_ARTICLE[found]} (use --{other})")
            return path
    raise StylizeError("no model given")  # argparse enforces one; kept for API callers


def model_options(args: argparse.Namespace) -> dict:
    """``load_backend`` keywords from the ONNX-convention and tiling flags (checked: one-line errors)."""
    from stylize_video.export.conventions import ConventionFlags
    from stylize_video.pipeline.tiling import TileOptions

    if args.tile is None and (args.tile_overlap is not None or args.tile_batch != 4):
        raise StylizeError("--tile-overlap and --tile-batch need --tile SIZE")
    tile = TileOptions(args.tile, args.tile_overlap, args.tile_batch) if args.tile is not None else None
    return {"convention": ConventionFlags(args.value_range, args.layout, args.channel_order), "tile": tile}


# model flag -> the file kind it takes
_KIND_OF_FLAG = {"engine": "engine", "onnx": "onnx", "checkpoint": "checkpoint"}
_ARTICLE = {"engine": "a TensorRT engine", "onnx": "an ONNX model", "checkpoint": "a PyTorch checkpoint"}


def _check_outputs(args: argparse.Namespace) -> None:
    if cliargs.json_to_stdout(args.json) and args.output == "-":
        raise StylizeError("--json - and the video both go to stdout: give --json a file")
    cliargs.check_output(args.json, overwrite=args.overwrite, flag="--json")  # now: a bad path must not cost a run


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


# = stylize_video.pipeline.io.deinterlace.MODES / RATES (not imported here: --help stays free of PyAV)
DEINTERLACE_MODES = ("auto", "off", "bwdif", "yadif")
DEINTERLACE_RATES = ("frame", "field")
# = stylize_video.pipeline.backends.torch.COMPILE_MODES (not imported here: --help stays free of torch)
COMPILE_MODE_CHOICES = ("max-autotune", "reduce-overhead", "max-autotune-no-cudagraphs", "default")


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _check_outputs(args)
    model_opts = model_options(args)
    # Imports after argument parsing: --help stays fast.
    from stylize_video.pipeline.backends import load_backend
    from stylize_video.pipeline.job import JobOptions, check_match_histogram, save_stats, stylize
    from stylize_video.pipeline.live.plan import make_sink, open_source, plan_io

    io = plan_io(args)  # bad input/output specs fail before a model is loaded
    device = cliargs.resolve_device(args.device)
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    options = JobOptions(apply_rotation=args.apply_rotation, progress=cliargs.progress_enabled(args.quiet),
                         queue_size=args.queue_size, realtime=io.realtime, interrupt_is_end=io.live_input,
                         match_histogram=args.match_histogram)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        sink = make_sink(io, args, device)  # output checks (exists, folder, encoder, pyvirtualcam) come first too
        backend = load_backend(_resolve_model(args, precision), args.backend, str(device), precision,
                               args.compile_mode or args.compile, **model_opts)
        with backend:
            from stylize_video.pipeline.model_summary import describe_model, summary_line

            model_facts, model_line = describe_model(backend), summary_line(backend)
            check_match_histogram(args.match_histogram, backend.scale)  # before a camera or stream is opened
            source = open_source(io, args, device)
            try:
                stats = stylize(source, sink, backend, options)
            finally:
                source.close()
    json_at = None
    if args.json:
        # An interrupted run's summary goes beside the partial video (s.partial.json): s.json stays free, so the
        # same command can run again without --overwrite.
        partial = stats.interrupted and not io.live_input
        try:
            json_at = save_stats(stats, args.json, extra={"input": args.input, "output": args.output,
                                                          "vcam": args.vcam, "match_histogram": args.match_histogram,
                                                          "model": model_facts},
                                 partial=partial, overwrite=args.overwrite)
        except StylizeError as exc:  # checked before the run; still possible (disk full): the video is kept
            kept = f"; the video is complete: {stats.output}" if stats.output and not stats.interrupted else ""
            raise StylizeError(f"{exc}{kept}") from None
    if not args.quiet:  # stderr: stdout may be the stream
        print(f"{PROG}: {stats.summary()}", file=sys.stderr)
        print(f"{PROG}: {model_line}", file=sys.stderr)  # the I/O convention and size rules the run used
    if stats.interrupted:
        return _stopped(stats, io.live_input, json_at)
    if not args.quiet:
        print(f"{PROG}: wrote {stats.output}", file=sys.stderr)
    return 0


def _stopped(stats, live_input: bool, json_at: str | Path | None) -> int:
    """The last line of a run stopped by Ctrl-C or SIGTERM, and its exit status (128 + the signal number)."""
    term = stats.stop_signal == "SIGTERM"
    code = cliargs.EXIT_TERMINATED if term else cliargs.EXIT_INTERRUPTED
    if live_input:  # stopping is how a live input ends: the outputs are complete
        print(f"{PROG}: stopped by {'SIGTERM' if term else 'Ctrl-C'}; wrote {stats.output or 'nothing'}",
              file=sys.stderr)
        return code
    where = stats.output or "nothing (no frame was finished)"
    summary = f" (summary: {json_at})" if json_at is not None and str(json_at) != cliargs.STDOUT else ""
    print(f"{PROG}: {'terminated' if term else 'interrupted'}; partial output kept: {where}{summary}",
          file=sys.stderr)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
