"""``stylize-export``: onnx | verify | engine | fetch | list.

    stylize-export onnx CKPT OUT.onnx [--fp16 [--fp16-io]] [--opset 17] [--exporter torchscript|dynamo]
    stylize-export verify MODEL.onnx [--checkpoint CKPT] [--reference FP32.onnx]
    stylize-export engine MODEL.onnx OUT.plan [--fp16] [--min-shape 64x64 --opt-shape 1080x1920 --max-shape 3840x3840
                          | --static HxW] [--workspace MiB] [--builder-optimization-level N] [--timing-cache PATH]
                          [--hardware-compatible] [--version-compatible] [--typing auto|strong|weak]
                          [--device cuda|cuda:N]
    stylize-export fetch STYLE [--source zoo|pytorch-examples] [--opset 9] [--out OUT.onnx] [--fp16]
    stylize-export list [--json [PATH]] [--cache DIR]

Shared flags (``stylize_video.cliargs``): --overwrite (onnx, engine, fetch --out, list --json), -q/--quiet,
--json PATH|- (list; alone: stdout). onnx and verify take no --device: their checks are defined on the CPU
(PyTorch vs ONNX Runtime's CPU provider, FP16 on the ONNX reference evaluator; see ``verify.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from stylize_video import cliargs
from stylize_video.errors import StylizeError, run_cli
from stylize_video.export.engine_cache import cache_root
from stylize_video.export.registry import SOURCES, styles

if TYPE_CHECKING:
    from stylize_video.export.engine_meta import BuildOptions
    from stylize_video.export.metadata import ModelMetadata
    from torch import nn

PROG = "stylize-export"
# = stylize_video.export.onnx_export.DEFAULT_OPSET / sorted(EXPORTERS); not imported here: that module loads torch
# and onnx, and --help and `list` stay free of both (the heavy imports run inside run_cli: Ctrl-C exits 130)
DEFAULT_OPSET = 17
MIN_OPSET = 17  # = stylize_video.export.onnx_export.MIN_OPSET
EXPORTER_CHOICES = ("dynamo", "torchscript")


def _export_and_check(model: nn.Module, meta: ModelMetadata, out: Path, args: argparse.Namespace) -> Path:
    """Export, run every check (FP32 parity; FP16 PSNR + no FP16 norms), print the figures, write atomically."""
    from stylize_video.export.fp16 import to_mixed_fp16
    from stylize_video.export.metadata import write_metadata
    from stylize_video.export.onnx_export import export_model, save_atomic
    from stylize_video.export.verify import VerifyReport, check_fp16_model, check_fp32_model, torch_runner

    say = _printer(args.quiet)
    proto = export_model(model, meta, opset=args.opset, exporter=args.exporter)
    reference = torch_runner(model)
    report = VerifyReport(_fp32_label(out, args.fp16))
    check_fp32_model(proto, reference, meta.scale, report)
    say("\n".join(report.lines()))
    final = proto
    if args.fp16:
        final = to_mixed_fp16(proto, fp16_io=args.fp16_io)
        meta.precision, meta.io_dtype = "fp16-mixed", ("float16" if args.fp16_io else "float32")
        write_metadata(final, meta)
        report = VerifyReport(f"{out} (fp16 mixed graph)")
        check_fp16_model(final, reference, meta.scale, report, fp32=proto)
        say("\n".join(report.lines()))
    save_atomic(final, out)
    say(f"wrote {out}")
    return out


def _fp32_label(out: Path, fp16: bool) -> str:
    """What the first check block is about: the file itself, or with --fp16 the FP32 graph it is made from (the
    file holds the mixed FP16 graph of the second block)."""
    return f"fp32 graph (exported first; {out} gets the fp16 mixed graph below)" if fp16 else f"{out} (fp32 graph)"


def _printer(quiet: bool):
    """``print`` for the figures and summary lines on stdout, or nothing with --quiet (the exit status says it)."""
    return (lambda *_args, **_kwargs: None) if quiet else print


def _cmd_onnx(args: argparse.Namespace) -> int:
    from stylize_video.export.metadata import metadata_for
    from stylize_video.train.checkpoint import load_model

    if args.fp16_io and not args.fp16:
        raise StylizeError("--fp16-io needs --fp16")
    cliargs.check_output(args.output, overwrite=args.overwrite)
    cliargs.check_distinct(inputs=[("checkpoint", args.checkpoint)], outputs=[("output", args.output)])
    model, info = load_model(args.checkpoint, "cpu")
    if args.fp16 and not info.supports_half:
        raise StylizeError(f"{info.label} does not support FP16 (spandrel: supports_half=False); export without --fp16")
    meta = metadata_for(model, info)
    if not info.arch.startswith("spandrel:"):
        _export_and_check(model, meta, Path(args.output), args)
        return 0
    try:  # other people's architectures: find out whether the graph is size-dynamic by exporting and checking
        _export_and_check(model, meta, Path(args.output), args)
    except StylizeError as exc:
        raise StylizeError(f"{info.name} ({info.arch}) cannot be exported to ONNX with dynamic height/width: "
                           f"{_reason(exc, Path(args.output))}") from None
    except Exception as exc:  # noqa: BLE001 - the exporter's own errors for ops or control flow it cannot trace
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StylizeError(f"{info.name} ({info.arch}) cannot be exported to ONNX: torch.onnx says "
                           f"{first[:240]}") from None
    return 0


def _reason(exc: StylizeError, out: Path) -> str:
    text = str(exc)
    for prefix in (f"{_fp32_label(out, False)}: ", f"{_fp32_label(out, True)}: ", f"{out} (fp16 mixed graph): "):
        text = text.removeprefix(prefix)
    return text


def _cmd_verify(args: argparse.Namespace) -> int:
    from stylize_video.export.metadata import load_onnx, read_metadata, weights_sha256
    from stylize_video.export.verify import VerifyReport, check_fp16_model, check_fp32_model, torch_runner

    path = Path(args.model)
    model = load_onnx(path)
    meta = read_metadata(model)
    reference = None
    if args.checkpoint:
        from stylize_video.train.checkpoint import load_model

        net, _ = load_model(args.checkpoint, "cpu")
        digest = weights_sha256(net.state_dict())
        if digest != meta.weights_sha256:
            raise StylizeError(f"{args.checkpoint} is not the checkpoint {path} was exported from "
                               f"(weights sha256 {digest[:12]}… vs {meta.weights_sha256[:12]}…)")
        reference = torch_runner(net)
    fp32 = load_onnx(args.reference) if args.reference else None
    report = VerifyReport(str(path))
    if meta.precision.startswith("fp16"):
        check_fp16_model(model, reference, meta.scale, report, fp32=fp32)
    else:
        check_fp32_model(model, reference, meta.scale, report)
        if reference is None:
            report.notes.append("parity not checked: pass --checkpoint to compare with PyTorch")
    _printer(args.quiet)("\n".join(report.lines()))
    return 0


def _build_options(args: argparse.Namespace) -> BuildOptions:
    from stylize_video.export.engine_meta import BuildOptions

    if args.fp16_io and not args.fp16:
        raise StylizeError("--fp16-io needs --fp16")
    level = args.builder_optimization_level  # (its range and --workspace's: argparse)
    return BuildOptions(precision="fp16" if args.fp16 else "fp32", fp16_io=args.fp16_io, workspace_mib=args.workspace,
                        builder_optimization_level=level, hardware_compatible=args.hardware_compatible,
                        version_compatible=args.version_compatible, typing=args.typing,
                        timing_cache=str(args.timing_cache) if args.timing_cache else None)


def _cmd_engine(args: argparse.Namespace) -> int:
    from stylize_video.export.engine_meta import check_build_fits
    from stylize_video.export.metadata import read_metadata
    from stylize_video.export.shapes import build_profile, fit_profile

    src = Path(args.model)
    if not src.is_file():
        raise StylizeError(f"ONNX model not found: {src}")
    _check_engine_source(src)
    meta = read_metadata(src)
    profile = build_profile(meta.task, meta.scale, min_shape=args.min_shape, opt_shape=args.opt_shape,
                            max_shape=args.max_shape, static=args.static, max_batch=args.max_batch)
    profile = fit_profile(profile, meta.size_rules)  # inputs are padded to the network's sizes first
    build = _build_options(args)
    check_build_fits(meta, profile, build)
    for path in (args.output, f"{args.output}.json"):
        cliargs.check_output(path, overwrite=args.overwrite)
    cliargs.check_distinct(inputs=[("model", src)],
                           outputs=[("output", args.output), ("output", f"{args.output}.json")])
    gpu = _engine_device(args.device)
    from stylize_video.export.tensorrt import build_engine  # only now: everything above works without TensorRT

    with gpu if gpu is not None else nullcontext():
        engine = build_engine(src, Path(args.output), profile, build, log=_printer(args.quiet))
    _printer(args.quiet)(f"wrote {args.output} (+ {args.output}.json): TensorRT {engine.tensorrt_version}, {engine.gpu_name}, "
          f"{engine.typing} typing, {engine.precision}, profile {profile.describe()}")
    return 0


def _check_engine_source(src: Path) -> None:
    """Engines are built from our ONNX export (it carries the size rules and I/O convention the sidecar needs):
    a checkpoint or an engine given instead gets the command to run first, not a protobuf parse error."""
    from stylize_video.pipeline.backends import model_kind

    try:
        kind = model_kind(src)
    except StylizeError:
        return  # an unknown kind: read_metadata says what is wrong with it as an ONNX file
    if kind == "checkpoint":
        raise StylizeError(f"{src} is a PyTorch checkpoint; engines are built from ONNX: export it with "
                           f"`stylize-export onnx {src} {src.with_suffix('.onnx')}` first")
    if kind == "engine":
        raise StylizeError(f"{src} is a TensorRT engine already; `stylize-export engine` takes the ONNX it was built "
                           "from")


def _engine_device(device: str):  # -> torch.cuda.device | None
    """The CUDA device to build on (a context manager), None for auto (the current one); CPU refused."""
    if device == "auto":
        return None
    dev = cliargs.resolve_device(device)
    if dev.type != "cuda":
        raise StylizeError(f"--device {device}: TensorRT builds engines on a CUDA GPU (give cuda or cuda:N)")
    import torch

    return torch.cuda.device(dev)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from stylize_video.export.metadata import ModelMetadata, weights_sha256
    from stylize_video.export.zoo_import import fetch_style

    if args.out:  # the cache itself is ours to refresh; a file the user names is not
        cliargs.check_output(args.out, overwrite=args.overwrite)
    root = Path(args.cache) if args.cache else cache_root()
    net, got = fetch_style(args.style, root, source=args.source, opset=args.opset_zoo,
                           allow_unverified=args.allow_unverified)
    print(f"downloaded {got.download}; checkpoint {got.checkpoint}"
          + (f"; imported weights reproduce the zoo graph to {got.import_error:.2e}" if got.import_error is not None
             else ""))
    out = Path(args.out) if args.out else root / "models" / f"{got.style}.onnx"
    meta = ModelMetadata(task="style", scale=1, arch="transformer_net", weights_sha256=weights_sha256(net.state_dict()),
                         source=got.source)
    _export_and_check(net, meta, out, args)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from stylize_video.export.listing import format_table, list_styles

    cliargs.check_output(args.json, overwrite=args.overwrite, flag="--json")
    listing = list_styles(Path(args.cache) if args.cache else cache_root())
    if args.json:
        cliargs.write_json(listing, args.json)
    if not cliargs.json_to_stdout(args.json):
        print(format_table(listing))
    return 0


def _add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fp16", action="store_true", help="write a mixed-precision graph (norms stay FP32)")
    p.add_argument("--fp16-io", action="store_true", help="with --fp16: float16 input/output (default float32)")
    p.add_argument("--opset", type=cliargs.integer(ge=MIN_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset (>= {MIN_OPSET}, default {DEFAULT_OPSET})")
    p.add_argument("--exporter", choices=EXPORTER_CHOICES, default="torchscript",
                   help="torch.onnx path (default torchscript; dynamo needs onnxscript)")
    cliargs.add_overwrite_option(p)
    cliargs.add_quiet_option(p, help="print nothing on success (the checks still run; failures are errors)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Export stylize-video networks to ONNX and TensorRT.")
    cliargs.add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("onnx", help="checkpoint -> ONNX (dynamic batch/height/width), verified")
    p.add_argument("checkpoint", help="our checkpoint, a pytorch/examples .pth, or any architecture spandrel detects "
                   "(.pth/.safetensors)")
    p.add_argument("output", help="OUT.onnx")
    _add_export_options(p)
    p.set_defaults(func=_cmd_onnx)

    p = sub.add_parser("verify", help="run the export checks on an ONNX file and print the figures")
    p.add_argument("model", help="MODEL.onnx")
    p.add_argument("--checkpoint", help="checkpoint it came from: enables PyTorch parity / FP16 PSNR")
    p.add_argument("--reference", help="FP32 ONNX to compare an FP16 graph against")
    cliargs.add_quiet_option(p, help="print nothing on success (the exit status says it)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("engine", help="ONNX -> TensorRT engine (.plan + .plan.json)")
    p.add_argument("model", help="MODEL.onnx from `stylize-export onnx`")
    p.add_argument("output", help="OUT.plan")
    p.add_argument("--fp16", action="store_true", help="FP16 engine (normalisation layers stay FP32)")
    p.add_argument("--fp16-io", action="store_true", help="with --fp16: float16 input/output tensors")
    p.add_argument("--min-shape", help="HxW, default 64x64")
    p.add_argument("--opt-shape", help="HxW, default 1080x1920")
    p.add_argument("--max-shape", help="HxW, default 3840x3840 (4K landscape and portrait)")
    p.add_argument("--static", metavar="HxW", help="one fixed input size (min = opt = max)")
    p.add_argument("--max-batch", type=cliargs.integer(ge=1), default=1, help="largest batch (default 1)")
    p.add_argument("--workspace", type=cliargs.integer(ge=1), metavar="MiB", help="workspace memory pool limit")
    p.add_argument("--builder-optimization-level", type=cliargs.integer(ge=0, le=5), metavar="0-5",
                   help="TensorRT default is 3")
    p.add_argument("--timing-cache", metavar="PATH", help="timing cache file, reused and updated")
    p.add_argument("--hardware-compatible", action="store_true", help="runs on any Ampere+ GPU (slower)")
    p.add_argument("--version-compatible", action="store_true", help="runs on newer TensorRT (lean runtime)")
    p.add_argument("--typing", choices=("auto", "strong", "weak"), default="auto",
                   help="network typing (auto: strong on TensorRT >= 10.12)")
    cliargs.add_device_option(p, help="GPU to build on: cuda or cuda:N (default auto: the current CUDA device); "
                                      "the engine runs on GPUs of that architecture")
    cliargs.add_overwrite_option(p, help="replace an existing OUT.plan / OUT.plan.json")
    cliargs.add_quiet_option(p, help="no build log and no summary")
    p.set_defaults(func=_cmd_engine)

    p = sub.add_parser("fetch", help="download a pretrained style, import it, export ONNX")
    p.add_argument("style", help=", ".join(styles()))
    p.add_argument("--source", choices=SOURCES, default="zoo", help="ONNX model zoo (default) or pytorch/examples")
    p.add_argument("--zoo-opset", dest="opset_zoo", type=int, choices=(8, 9), default=9,
                   help="zoo file variant: 9 (default) or 8")
    p.add_argument("--out", help="OUT.onnx (default: <cache>/models/<style>.onnx)")
    p.add_argument("--cache", help="cache root (default $STYLIZE_CACHE or ~/.cache/stylize-video)")
    p.add_argument("--allow-unverified", action="store_true", help="accept a download without a published sha256")
    _add_export_options(p)
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("list", help="the registry's styles: task, source, licence, sha256, local path if fetched")
    cliargs.add_json_option(p, positional_free=True, help="write the list as JSON to PATH (- for stdout, where it "
                                                          "replaces the table)")
    p.add_argument("--cache", help="cache root (default $STYLIZE_CACHE or ~/.cache/stylize-video)")
    cliargs.add_overwrite_option(p, help="replace an existing --json file")
    cliargs.add_quiet_option(p, help="accepted for uniformity: list prints only its result")
    p.set_defaults(func=_cmd_list)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: ``stylize-export``."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
