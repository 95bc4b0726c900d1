"""``stylize-batch INPUT... --out-dir DIR (--engine X.plan | --onnx X.onnx | --checkpoint X.pth | --style NAME)``.

Every model, runtime, encoder and output option of ``stylize-video`` (the same option groups, from
``stylize_video.pipeline.cli``), plus the batch options. See pipeline/batch/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from stylize_video import cliargs
from stylize_video.errors import StylizeError, run_cli
from stylize_video.pipeline.batch.ray_address import address_arg
from stylize_video.pipeline.cli import (
    add_encoder_arguments,
    add_model_arguments,
    add_output_arguments,
    add_runtime_arguments,
    add_selection_arguments,
)

PROG = "stylize-batch"
# = segments.DEFAULT_SEGMENT_SECONDS (segments.py imports av; the heavy imports run inside run_cli: Ctrl-C exits 130)
DEFAULT_SEGMENT_SECONDS = 30.0

EPILOG = f"""exit status: {cliargs.EXIT_OK} every input written (or already complete); {cliargs.EXIT_ERROR} an error before any
work (one line 'stylize-batch: error: ...'); {cliargs.EXIT_USAGE} bad usage; {cliargs.EXIT_PARTIAL} the batch ran but some inputs
failed (each named on stderr and in the summary; the others are complete); {cliargs.EXIT_INTERRUPTED} interrupted (run the same
command again to resume)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, epilog=EPILOG, description="Stylize or super-resolve many videos, and "
                                "long videos in keyframe-aligned segments, on every GPU of a machine or on Ray.")
    cliargs.add_version_option(p)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video files, folders (their video files) or globs (quoted; ** recurses)")
    p.add_argument("--out-dir", required=True, type=Path, metavar="DIR",
                   help="outputs go to DIR/<input name>.<ext> (created if missing)")
    add_model_arguments(p)
    add_runtime_arguments(p)
    add_encoder_arguments(p)
    add_selection_arguments(p)  # --video-stream, --deinterlace[-rate]; --start/--duration/--max-frames refused
    add_output_arguments(p)
    b = p.add_argument_group("batch")
    b.add_argument("--ext", help="output container for every input: mp4, mkv, mov or webm (default: the input's "
                   "when it can hold the output codec, else mkv)")
    b.add_argument("--segment-seconds", type=cliargs.number(gt=0), default=DEFAULT_SEGMENT_SECONDS, metavar="S",
                   help=f"cut inputs at keyframes into segments of about S seconds (default {DEFAULT_SEGMENT_SECONDS:g})")
    b.add_argument("--workers", type=cliargs.integer(ge=1), metavar="N", help="local: worker processes (default: "
                   "one per GPU, or 1 on the CPU); --ray: actors (default: one per GPU of the cluster)")
    b.add_argument("--ray", type=address_arg, metavar="ADDRESS",
                   help="run segments on Ray: 'local' starts a local Ray instance, 'auto' joins the cluster of this "
                   "machine, HOST:6379 a head node, ray://HOST:10001 through Ray Client (needs pip install "
                   "'stylize-video[ray]')")
    b.add_argument("--retries", type=cliargs.integer(ge=0), default=2, metavar="N",
                   help="run a segment again up to N times when its worker dies (default 2)")
    b.add_argument("--work-dir", type=Path, metavar="DIR", help="manifest and segment files (default "
                   "OUT_DIR/.stylize-batch); on a cluster a folder every node can write")
    b.add_argument("--keep-segments", action="store_true", help="keep segment files after joining")
    b.add_argument("--markdown", metavar="PATH", help="write the summary as Markdown (- for stdout)")
    return p


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.inputs:
        p.error("the following arguments are required: INPUT")
    return args


def _check(args: argparse.Namespace) -> None:
    for flag in ("start", "duration", "max_frames"):
        if getattr(args, flag) is not None:
            raise StylizeError(f"--{flag.replace('_', '-')} selects part of one video; stylize-batch processes whole "
                               "files (run stylize-video for a part)")
    if args.ray and re.fullmatch(r"cuda:\d+", args.device):
        raise StylizeError("--device cuda:N picks one GPU; with --ray every worker gets its own: use --device cuda")
    if cliargs.json_to_stdout(args.json) and cliargs.json_to_stdout(args.markdown):
        raise StylizeError("--json - and --markdown - both go to stdout: give one of them a file")
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        cliargs.check_output(path, overwrite=args.overwrite, flag=flag)  # now: a bad path must not cost a batch
    cliargs.check_distinct(inputs=[*(("", p) for p in args.inputs),
                                   *((f"--{f}", getattr(args, f)) for f in ("engine", "onnx", "checkpoint"))],
                           outputs=[("--json", args.json), ("--markdown", args.markdown)])


def local_devices(device: str, workers: int | None) -> list[str]:
    """Device of each local worker: one per GPU (``--device auto|cuda``), ``workers`` on one GPU (``cuda:N``)
    or on the CPU (default 1). More workers than GPUs share them round-robin."""
    dev = cliargs.resolve_device(device)
    if dev.type == "cpu" or dev.index is not None:
        return [str(dev)] * (workers or 1)
    import torch

    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [gpus[i % len(gpus)] for i in range(workers or len(gpus))]


def worker_config(args: argparse.Namespace, device_type: str, encoder, threads: int | None = None):
    """The ``WorkerConfig`` of a parsed command line (``device_type`` "cpu" or "cuda"; ``encoder``: its
    ``EncoderOptions``); StylizeError for model options that do not go together (as ``stylize-video``)."""
    from stylize_video.pipeline.batch.worker import WorkerConfig
    from stylize_video.pipeline.cli import _resolve_model, model_options
    from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions

    precision = args.precision or ("fp16" if device_type == "cuda" else "fp32")
    return WorkerConfig(_resolve_model(args, precision), args.backend, device_type, args.precision,
                        args.compile_mode or args.compile, encoder, args.apply_rotation, args.match_histogram,
                        args.hwdec, args.queue_size, threads, args.video_stream,
                        DeinterlaceOptions(args.deinterlace, args.deinterlace_rate), **model_options(args))


def _write_markdown(path: str, text: str) -> None:
    if cliargs.json_to_stdout(path):  # "-" means stdout for --markdown too
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        cliargs.write_atomic(path, text.encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = _parse(argv)
    _check(args)
    from stylize_video.pipeline.batch.driver import BatchOptions, run_batch
    from stylize_video.pipeline.batch.inputs import parse_ext
    from stylize_video.pipeline.io.containers import check_pix_fmt_name
    from stylize_video.pipeline.io.sink import choose_pix_fmt
    from stylize_video.pipeline.live.plan import DEFAULT_FILE_CODEC, encoder_options

    ext = parse_ext(args.ext) if args.ext else None
    encoder = encoder_options(args, DEFAULT_FILE_CODEC)
    if encoder.codec:  # an unknown encoder, or a --pix-fmt it does not take: refused now
        choose_pix_fmt(encoder.codec, "yuv420p", 2, 2, encoder.pix_fmt)
    elif encoder.pix_fmt:
        check_pix_fmt_name(encoder.pix_fmt)
    ray_executor = None
    try:
        if args.ray:
            from stylize_video.pipeline.batch.ray_executor import RayExecutor

            ray_executor = RayExecutor(None, args.ray, args.workers, attempts=args.retries + 1)
            device = ray_executor.device_type() if args.device == "auto" else args.device
            devices: list[str] = []
        else:
            devices = local_devices(args.device, args.workers)
            device = devices[0]
        dev_type = device.split(":")[0]
        threads = max(1, (os.cpu_count() or 1) // len(devices)) if dev_type == "cpu" and devices else None
        config = worker_config(args, dev_type, encoder, threads)
        options = BatchOptions(args.out_dir, args.work_dir, ext, args.segment_seconds, args.overwrite,
                               args.keep_segments, not args.no_audio, not args.no_subtitles,
                               progress=cliargs.progress_enabled(args.quiet))
        if ray_executor is not None:
            ray_executor.config = config

            def make_executor():
                return ray_executor
        else:
            from stylize_video.pipeline.batch.local import LocalExecutor

            def make_executor():
                return LocalExecutor(config, devices, attempts=args.retries + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            summary = run_batch(args.inputs, config, options, make_executor, "ray" if args.ray else "local")
    finally:
        if ray_executor is not None:
            ray_executor.close()
    for report in summary.inputs:
        for w in report.warnings:
            print(f"{PROG}: warning: {report.input}: {w}", file=sys.stderr)
        if report.status == "failed":
            print(f"{PROG}: error: {report.error_line()}", file=sys.stderr)
    if args.json:
        cliargs.write_json(summary.to_dict(), args.json)
    if args.markdown:
        _write_markdown(args.markdown, summary.to_markdown())
    if not args.quiet:
        print(f"{PROG}: {summary.line()}", file=sys.stderr)
    return summary.exit_code


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
