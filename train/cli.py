"""``stylize-train``: train style-transfer or super-resolution networks, evaluate SR models.

    stylize-train style --style-image IMG --data DIR --out DIR [...]
    stylize-train sr --scale 4 --data DIR --out DIR --loss feature|pixel [...]
    stylize-train eval-sr (--checkpoint CKPT | --method bicubic) --data DIR [--scale 4] [--json [PATH]]
                          [--match-histogram]

Shared flags (``stylize_video.cliargs``): --device, --overwrite, -q/--quiet, --json PATH|- (alone: stdout).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from stylize_video import cliargs
from stylize_video.errors import StylizeError, run_cli

PROG = "stylize-train"
# = sorted(stylize_video.train.losses.PRESETS); not imported here: --help stays free of torch (and Ctrl-C during
# the heavy imports, which now run inside run_cli, exits 130 like any other)
LOSS_NETS = ("vgg16", "vgg19")
SR_SCALES = (2, 4, 8)  # = stylize_video.train.networks.sr_net.SCALES (not imported here: --help stays free of torch)


def _run_options(p: argparse.ArgumentParser, iterations: int) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    g.add_argument("--out", required=True, help="output folder: model.pth, checkpoints/, samples/, log.jsonl")
    g.add_argument("--iterations", type=cliargs.integer(ge=1), help=f"optimiser steps (default {iterations})")
    g.add_argument("--batch-size", type=cliargs.integer(ge=1), help="images per step (default 4)")
    g.add_argument("--lr", type=cliargs.number(gt=0), help="Adam learning rate (default 1e-3)")
    g.add_argument("--seed", type=cliargs.integer(), help="seed for weights, data order and crops (default 42)")
    g.add_argument("--checkpoint-every", type=cliargs.integer(ge=0), help="steps between checkpoints (default 2000; "
                   "0: only at the end)")
    g.add_argument("--sample-every", type=cliargs.integer(ge=0), help="steps between sample images (default 1000; "
                   "0: only at the end)")
    g.add_argument("--log-every", type=cliargs.integer(ge=1), help="steps between log lines / progress-bar loss "
                   "updates (default 10)")
    g.add_argument("--workers", type=cliargs.integer(ge=0), help="data-loading processes (default 4; 0 loads in the "
                   "main process)")
    cliargs.add_device_option(g, default=None, help="auto (default; when resuming: the checkpoint's), cpu, cuda "
                                                    "or cuda:N")
    g.add_argument("--no-amp", action="store_true", help="train in fp32 on CUDA (AMP is on by default there)")
    g.add_argument("--vgg-weights", help="loss-network weights: imagenet (default, torchvision download), "
                                         "PATH to a torchvision VGG state_dict, or random (tests only)")
    g.add_argument("--resume", metavar="CKPT", help="continue exactly from OUT/checkpoints/step_*.pth")
    cliargs.add_overwrite_option(g, help="start afresh in an --out folder that holds an earlier run (its log, "
                                         "model, checkpoints and samples are removed first); not needed to --resume "
                                         "from a checkpoint inside --out")
    cliargs.add_quiet_option(g, help="no progress bar and no summary line")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Train and evaluate Johnson et al. networks.")
    cliargs.add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    st = sub.add_parser("style", help="train a style-transfer TransformerNet")
    st.add_argument("--style-image", help="the style to learn (any format Pillow reads)")
    st.add_argument("--image-size", type=cliargs.integer(ge=16), help="training crops: shorter side resized, centre "
                    "crop (default 256)")
    st.add_argument("--style-size", type=cliargs.integer(ge=0), help="longer side of the style image (default 256; "
                    "0 = as is)")
    st.add_argument("--loss-net", choices=LOSS_NETS, help="layer preset: vgg16 (paper, default) or vgg19")
    st.add_argument("--content-layers", help="NAME[:WEIGHT],... (default relu2_2)")
    st.add_argument("--style-layers", help="NAME[:WEIGHT],... (default relu1_2,relu2_2,relu3_3,relu4_3; "
                                           "a missing weight is 1/C^2)")
    st.add_argument("--content-weight", type=cliargs.number(ge=0), help="default 1.0")
    st.add_argument("--style-weight", type=cliargs.number(ge=0), help="default 1e5")
    st.add_argument("--tv-weight", type=cliargs.number(ge=0), help="default 1e-4")
    _run_options(st, 40_000)

    sr = sub.add_parser("sr", help="train a super-resolution SRNet")
    sr.add_argument("--scale", type=int, choices=SR_SCALES, help="2, 4 (default) or 8")
    sr.add_argument("--loss", choices=["feature", "pixel"], help="relu2_2 feature loss (default) or pixel MSE")
    sr.add_argument("--patch-size", type=cliargs.integer(ge=1), help="HR training patch (default 288)")
    sr.add_argument("--blur-sigma", type=cliargs.number(ge=0), help="Gaussian blur before downsampling (default 1.0)")
    sr.add_argument("--tv-weight", type=cliargs.number(ge=0), help="default 0")
    _run_options(sr, 200_000)

    ev = sub.add_parser("eval-sr", help="PSNR/SSIM (Y channel) of an SR checkpoint or bicubic")
    ev.add_argument("--checkpoint", help="SR checkpoint to evaluate")
    ev.add_argument("--method", choices=["model", "bicubic"], default=None,
                    help="model (default with --checkpoint) or the bicubic baseline")
    ev.add_argument("--data", required=True, help="folder of HR images (searched recursively)")
    ev.add_argument("--scale", type=cliargs.integer(ge=2), help="upscaling factor (default: the checkpoint's, or 4)")
    cliargs.add_device_option(ev)
    cliargs.add_json_option(ev, positional_free=True, help="write the scores as JSON to PATH (- for stdout, "
                                                           "where it replaces the table; infinite PSNR -> null)")
    cliargs.add_overwrite_option(ev, help="replace an existing --json file")
    cliargs.add_quiet_option(ev, help="accepted for uniformity: eval-sr draws no progress; its table is the result")
    ev.add_argument("--match-histogram", action="store_true",
                    help="match each output's per-channel histogram to its LR input before scoring (the paper's "
                         "SR post-process)")
    return parser


def _training_files(data: str, quiet: bool) -> list[Path]:
    from stylize_video.train.images import list_images, readable_images

    files = list_images(data)
    good, bad = readable_images(files, quiet=quiet)
    if bad:
        shown = ", ".join(str(p) for p in bad[:3]) + (" ..." if len(bad) > 3 else "")
        print(f"{PROG}: skipping {len(bad)} unreadable image(s): {shown}", file=sys.stderr)
    if not good:
        raise StylizeError(f"no readable images under {data} ({len(bad)} file(s) could not be read)")
    return good


def _sample_images(files: list[Path], size: int, count: int = 4) -> list:
    from stylize_video.train.data import resize_center_crop
    from stylize_video.train.images import DECODE_ERRORS, load_rgb, to_tensor

    crop, out = resize_center_crop(size), []
    for path in files:
        if len(out) == count:
            break
        try:
            out.append(to_tensor(crop(load_rgb(path), None)))
        except DECODE_ERRORS:  # not worth failing over a sample image: take the next file
            pass
    return out


def _train(args: argparse.Namespace, kind: str) -> int:
    from stylize_video.train import options
    from stylize_video.train.checkpoint import read_checkpoint
    from stylize_video.train.trainer import RunConfig, train

    task_cls, make_cfg, from_dict, iterations = {
        "style": (_style_task, options.style_config, options.style_from_dict, 40_000),
        "sr": (_sr_task, options.sr_config, options.sr_from_dict, 200_000),
    }[kind]
    arch = {"style": "transformer_net", "sr": "sr_net"}[kind]
    resume, base_task, base_run = None, None, RunConfig(out=args.out, iterations=iterations)
    if args.resume:
        resume = read_checkpoint(args.resume)
        task_dict, base_run = options.from_checkpoint(resume, arch, args.resume)
        base_task = from_dict(task_dict)
    cfg = make_cfg(args, base_task)
    run = options.run_config(args, base_run)
    run.out = args.out
    if base_task is not None:
        options.refuse_changes(base_task, cfg, options.RESUMABLE_TASK)
        options.refuse_changes(base_run, run, options.RESUMABLE_RUN)
    cliargs.resolve_device(run.device)  # a GPU this machine lacks is refused before the images are read
    out = Path(args.out)
    previous = _previous_run(out, args.resume)
    if previous and not args.overwrite:
        raise StylizeError(f"{args.out} holds an earlier run ({previous[0].name}); pass --overwrite to start afresh "
                           "there, or --resume one of its checkpoints")
    # What --overwrite removes and what the run writes may hold no input (e.g. --vgg-weights OUT/model.pth).
    vgg = cfg.vgg_weights if cfg.vgg_weights not in ("imagenet", "random") else None
    written = dict.fromkeys([*previous, out / "model.pth", out / "log.jsonl"])
    cliargs.check_distinct(inputs=[("--style-image", getattr(cfg, "style_image", None)), ("--data", args.data),
                                   ("--resume", args.resume), ("--vgg-weights", vgg)],
                           outputs=[("--out", path) for path in written])
    task = task_cls(cfg)
    files = _training_files(args.data, args.quiet)
    size = cfg.image_size if kind == "style" else cfg.patch_size
    samples = _sample_images(files, size)

    def clear_previous() -> None:  # --overwrite: only once every check passed, the loss network's weights loaded
        for path in previous:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    result = train(task, run, files, resume, samples, quiet=args.quiet, before_writing=clear_previous)
    if result.skipped:
        print(f"{PROG}: {result.skipped} image(s) failed to decode during training and were replaced",
              file=sys.stderr)
    if not args.quiet:
        print(f"saved {result.model_path} (step {result.step})")
    return 0


# What a training run writes into --out (trainer.py); anything else there is the user's and is left alone.
RUN_OUTPUTS = ("model.pth", "log.jsonl", "checkpoints", "samples")


def _previous_run(out: Path, resume: str | None) -> list[Path]:
    """An earlier run's outputs in ``out``; none when ``resume`` continues a checkpoint of that run.

    Errors: ``StylizeError`` when ``out`` is a file or a name the file system refuses (too long).
    """
    try:
        is_dir = out.is_dir()
        if not is_dir and out.exists():
            raise StylizeError(f"cannot create output folder {out}: a file of that name exists")
        if resume is not None and is_dir and Path(resume).resolve().is_relative_to(out.resolve()):
            return []
        return [out / name for name in RUN_OUTPUTS if is_dir and (out / name).exists()]
    except OSError as exc:
        raise StylizeError(f"cannot create output folder {out}: {exc.strerror or exc}") from None


def _style_task(cfg):
    from stylize_video.train.style import StyleTask

    return StyleTask(cfg)


def _sr_task(cfg):
    from stylize_video.train.sr import SRTask

    return SRTask(cfg)


def _eval_sr(args: argparse.Namespace) -> int:
    from stylize_video.train import eval_sr
    from stylize_video.train.checkpoint import load_model
    from stylize_video.train.runtime import pick_runtime

    method = args.method or ("model" if args.checkpoint else "bicubic")
    if method == "bicubic" and args.checkpoint:
        raise StylizeError("--method bicubic evaluates the bicubic baseline: drop --checkpoint, or drop --method")
    if method == "model" and not args.checkpoint:
        raise StylizeError("--checkpoint is required unless --method bicubic")
    cliargs.check_output(args.json, overwrite=args.overwrite, flag="--json")
    cliargs.check_distinct(inputs=[("--data", args.data), ("--checkpoint", args.checkpoint)],
                           outputs=[("--json", args.json)])
    device = cliargs.resolve_device(args.device)  # bicubic too: --device cuda on a machine without one is an error
    if method == "model":
        runtime = pick_runtime(str(device), amp=False)
        model, info = load_model(args.checkpoint, runtime.device)
        if info.task != "sr":
            raise StylizeError(f"{args.checkpoint} is a {info.task} model, not a super-resolution one")
        if args.scale is not None and args.scale != info.scale:
            raise StylizeError(f"--scale {args.scale} does not match the checkpoint's scale {info.scale}")
        scale, upscale = info.scale, eval_sr.model_upscaler(model, runtime.device)
    else:
        scale = 4 if args.scale is None else args.scale  # (at least 2: argparse)
        upscale = eval_sr.bicubic_upscaler(scale)
    if args.match_histogram:
        upscale = eval_sr.with_histogram_matching(upscale)
    scores, skipped = eval_sr.evaluate(args.data, scale, upscale)
    if skipped:
        print(f"{PROG}: skipped {len(skipped)} unreadable or too small image(s) (need >= "
              f"{eval_sr.min_side(scale)} px): {', '.join(skipped[:3])}", file=sys.stderr)
    if not scores:
        raise StylizeError(f"no image under {args.data} could be evaluated")
    if args.json:
        meta = {"method": method, "checkpoint": args.checkpoint if method == "model" else None, "scale": scale,
                "match_histogram": args.match_histogram,
                "protocol": "Y (BT.601), border = scale, MATLAB bicubic LR, 8-bit rounding"}
        cliargs.write_json(eval_sr.to_json(scores, skipped, meta), args.json)
    if not cliargs.json_to_stdout(args.json):
        matched = ", histogram-matched to LR" if args.match_histogram else ""
        print(f"# {method}{' ' + args.checkpoint if method == 'model' else ''}, x{scale}{matched}, Y channel, "
              f"border {scale}")
        print(eval_sr.format_table(scores))
    return 0


_COMMANDS = {"style": lambda a: _train(a, "style"), "sr": lambda a: _train(a, "sr"), "eval-sr": _eval_sr}


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Warnings print as one line "stylize-train: warning: ..."; callers' recorders still see them.
    saved, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return _COMMANDS[args.command](args)
    finally:
        warnings.formatwarning = saved


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
