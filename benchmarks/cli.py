"""``stylize-bench``: what each optimisation buys, measured on one machine in one run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stylize_video import cliargs
from stylize_video.benchmarks.config import (
    RANDOM_WEIGHT_KINDS,
    BenchConfig,
    model_kind_of,
    parse_int_list,
    parse_size,
    parse_sizes,
)
from stylize_video.benchmarks.variants import VARIANTS
from stylize_video.errors import StylizeError, Terminated, run_cli
from stylize_video.pipeline.cli import COMPILE_MODE_CHOICES

PROG = "stylize-bench"
OUT_NAMES = {"json": "bench.json", "markdown": "bench.md", "plot": "bench.png"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="What each optimisation buys, measured on one machine in "
                                "one run: model-only and end-to-end FPS per backend and size, against the PyTorch "
                                "eager FP32 baseline.",
                epilog="Backends: " + ", ".join(f"{k} ({v.description})" for k, v in VARIANTS.items()))
    cliargs.add_version_option(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="checkpoint (.pth), ONNX (.onnx) or TensorRT engine (.plan)")
    src.add_argument("--random-weights", choices=RANDOM_WEIGHT_KINDS,
                     help="untrained TransformerNet (style) or x4 SRNet (sr4): a model-free smoke run")
    src.add_argument("--from-json", type=Path, metavar="JSON",
                     help="run nothing: re-render the reports of an earlier result JSON")
    src.add_argument("--identity-model", action="store_true",
                     help="a do-nothing ONNX model (output = input): the end-to-end section then measures the frame "
                     "path itself against a plain decode -> encode (pipeline_vs_plain)")
    p.add_argument("--backends", help="comma-separated subset of the backends below (default: all; "
                                      "the torch-fp32 baseline always runs)")
    p.add_argument("--sizes", type=cliargs.parsed_by(parse_sizes), help="comma-separated input sizes, e.g. 360p,720p or 800x600 "
                                   "(default: 360p,720p,1080p,2160p; x4 SR: 180p,270p,540p)")
    p.add_argument("--batch", type=cliargs.integer(ge=1), default=1, help="frames per call in the model section "
                   "(default 1)")
    p.add_argument("--iters", type=cliargs.integer(ge=1), default=50, help="timed iterations per measurement "
                   "(default 50)")
    p.add_argument("--warmup", type=cliargs.integer(ge=0), default=10, help="untimed iterations first (default 10)")
    p.add_argument("--video", type=Path, help="clip for the end-to-end section (default: a synthetic clip at "
                                              "the first --sizes entry, generated once and cached)")
    p.add_argument("--clip-frames", type=cliargs.integer(ge=1), default=120, help="frames of the end-to-end clip "
                   "(default 120)")
    p.add_argument("--clip-size", type=cliargs.parsed_by(parse_size), help="size of the synthetic clip (default: "
                   "the first --sizes entry)")
    p.add_argument("--e2e-repeats", type=cliargs.integer(ge=1), default=1, metavar="N",
                   help="(plain decode -> encode, full pipeline) pairs, alternating; pipeline_vs_plain is their "
                   "median (default 1)")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end section")
    p.add_argument("--throughput-batches", type=cliargs.parsed_by(parse_int_list), default="1,2,4",
                   help="TensorRT throughput batches (default 1,2,4)")
    p.add_argument("--throughput-streams", type=cliargs.parsed_by(parse_int_list), default="1,2,3",
                   help="TensorRT throughput streams (default 1,2,3)")
    p.add_argument("--throughput-size", type=cliargs.parsed_by(parse_size), help="size of the throughput section "
                   "(default: 1080p output)")
    cliargs.add_json_option(p, positional_free=True, help="write the result JSON (schema: benchmarks/schema.json) "
                                                          "to PATH (- for stdout, where it replaces the tables)")
    p.add_argument("--markdown", type=Path, help="write a Markdown report")
    p.add_argument("--plot", type=Path, help="write a PNG bar chart of FPS per backend per size")
    p.add_argument("--out-dir", type=Path, help="write bench.json, bench.md and bench.png into this folder "
                                                "(created if missing)")
    p.add_argument("--machine-label", help="machine name in reports (default: GPU name, or cpu-<n>core)")
    p.add_argument("--work-dir", type=Path, help="cache for exported models and clips "
                                                 "(default: ~/.cache/stylize-video/bench)")
    p.add_argument("--seed", type=cliargs.integer(), default=0, help="seed of the input frames and random weights")
    p.add_argument("--compile-mode", choices=COMPILE_MODE_CHOICES, default=None,
                   help="torch.compile mode of torch-compile-fp16 (default max-autotune; reduce-overhead skips "
                   "autotuning, so it compiles sooner, and still captures CUDA graphs)")
    p.add_argument("--budget-s", type=cliargs.number(gt=0), default=None, metavar="SECONDS",
                   help="time allowance of the whole run: model measurements not begun by 60%% of it, end-to-end "
                   "stages not begun by 90%%, throughput points not begun by then are reported as skipped (the "
                   "baseline always runs; a measurement in progress, e.g. compiling, is not interrupted)")
    cliargs.add_device_option(p, help="auto (default: the GPU when there is one), cpu (GPU variants are reported "
                                      "skipped), cuda or cuda:N (the GPU every GPU variant runs on)")
    cliargs.add_overwrite_option(p, help="replace existing --json/--markdown/--plot files (refused otherwise, "
                                         "before the run)")
    cliargs.add_quiet_option(p, help="no progress lines on stderr and no 'wrote' summary; the tables still print")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Validate the parsed arguments into a BenchConfig; every problem is a one-line StylizeError."""
    if args.model is not None:
        model_kind_of(args.model)
    if args.video is not None:
        if not args.video.is_file():
            raise StylizeError(f"--video {args.video}: file not found")
        from stylize_video.benchmarks.e2e import probe_clip

        probe_clip(args.video)  # fail now, not after the model section
    backends = None
    if args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        unknown = [b for b in backends if b not in VARIANTS]
        if unknown:
            raise StylizeError(f"unknown backend {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    cliargs.resolve_device(args.device)  # a GPU this machine lacks: refused now
    for flag, path in (("--markdown", args.markdown), ("--plot", args.plot)):
        if path is not None and str(path) == cliargs.STDOUT:
            raise StylizeError(f"{flag} writes a file: give a path (only --json writes to stdout, with -)")
    outs = {"json": Path(args.json) if args.json else None, "markdown": args.markdown, "plot": args.plot}
    if args.out_dir is not None:
        outs = {k: v or args.out_dir / OUT_NAMES[k] for k, v in outs.items()}
        try:
            args.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StylizeError(f"--out-dir {args.out_dir}: cannot create it ({exc.strerror or exc})") from None
    if outs["plot"] is not None and outs["plot"].suffix.lower() != ".png":
        raise StylizeError(f"--plot writes PNG; give a .png name, got {outs['plot']}")
    for key, path in outs.items():  # now, not after a benchmark that may take an hour
        cliargs.check_output(path, overwrite=args.overwrite, flag=f"--{key}")
    cliargs.check_distinct(inputs=[("--model", args.model), ("--video", args.video), ("--from-json", args.from_json)],
                           outputs=[(f"--{key}", path) for key, path in outs.items()])
    return BenchConfig(
        model=args.model, random_weights=args.random_weights, backends=backends,
        sizes=args.sizes or [], batch=args.batch, iters=args.iters,
        warmup=args.warmup, video=args.video, e2e=not args.no_e2e, e2e_frames=args.clip_frames,
        clip_size=args.clip_size, throughput_batches=args.throughput_batches,
        throughput_streams=args.throughput_streams, throughput_size=args.throughput_size,
        json_out=outs["json"], markdown_out=outs["markdown"], plot_out=outs["plot"],
        machine_label=args.machine_label, work_dir=args.work_dir, seed=args.seed, compile_mode=args.compile_mode,
        budget_s=args.budget_s, device=args.device, e2e_repeats=args.e2e_repeats,
        identity_model=args.identity_model)


def _load_record(path: Path) -> dict:
    """An earlier result JSON, checked against the schema."""
    import json

    from stylize_video.benchmarks.validate import validate

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StylizeError(f"--from-json {path}: cannot read it ({exc})") from None
    errors = validate(record)
    if errors:
        raise StylizeError(f"--from-json {path}: not a stylize-bench result ({errors[0]})")
    return record


def _write_reports(cfg: BenchConfig, record: dict, partial: bool = False) -> list[str]:
    """Write the asked reports; ``partial``: during the run (no PNG, no JSON on stdout)."""
    from stylize_video.benchmarks.plot import write_plot
    from stylize_video.benchmarks.tables import render_markdown

    if cfg.json_out and not (partial and cliargs.json_to_stdout(cfg.json_out)):  # stdout: the final record only
        cliargs.write_json(record, cfg.json_out)
    if cfg.markdown_out:
        cliargs.write_atomic(cfg.markdown_out, render_markdown(record).encode("utf-8"))
    if cfg.plot_out and not partial:
        write_plot(cfg.plot_out, record)
    outs = (cfg.json_out, cfg.markdown_out, None if partial else cfg.plot_out)
    return [str(p) for p in outs if p and not cliargs.json_to_stdout(p)]


def _main(argv: Sequence[str] | None) -> int:
    import signal

    from stylize_video.benchmarks.tables import render_text

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.from_json is not None:
        record = _load_record(args.from_json)
    else:
        from stylize_video.benchmarks.suite import Hooks, run_benchmark

        latest: dict = {}

        def progress(partial: dict) -> None:  # reports as measured: a stopped run keeps what it had
            latest.clear()
            latest.update(partial)
            _write_reports(cfg, partial, partial=True)

        hooks = Hooks(log=(lambda _msg: None) if args.quiet else Hooks().log, progress=progress)
        try:  # SIGTERM arrives as errors.Terminated, a KeyboardInterrupt (run_cli's handler)
            record = run_benchmark(cfg, argv, hooks)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
            name = signal.Signals(signum).name
            if latest:
                stop = f"STOPPED by {name} after {latest['duration_s']:.0f} s: what was not measured is marked so."
                latest["notes"] = [*latest["notes"], stop]
                written = _write_reports(cfg, latest)
                print(f"{PROG}: stopped by {name}; partial reports: {', '.join(written) or 'none asked for'}",
                      file=sys.stderr)
            else:
                print(f"{PROG}: stopped by {name} before the first measurement", file=sys.stderr)
            return 128 + int(signum)
    to_stdout = cliargs.json_to_stdout(cfg.json_out)
    if not to_stdout:  # stdout carries the JSON alone when it is "-"
        print(render_text(record))
    written = _write_reports(cfg, record)
    if written and not args.quiet:
        print("wrote " + ", ".join(written), file=sys.stderr if to_stdout else sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
