"""One benchmark run: model section, end-to-end section, throughput section -> the result record."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stylize_video.benchmarks import e2e
from stylize_video.benchmarks.artifacts import Artifacts, describe_model, make_random_checkpoint
from stylize_video.benchmarks.config import (
    DEFAULT_SIZES,
    BenchConfig,
    FrameSize,
    model_kind_of,
    parse_size,
    parse_sizes,
)
from stylize_video.benchmarks.machine import Capabilities, collect_machine
from stylize_video.benchmarks.model_bench import (
    ArtifactFor,
    Budget,
    Loader,
    ModelBenchResult,
    SkipVariant,
    run_model_bench,
)
from stylize_video.benchmarks.record import EndToEnd, Throughput, build_record
from stylize_video.benchmarks.throughput import run_throughput
from stylize_video.benchmarks.validate import validate
from stylize_video.benchmarks.variants import VARIANTS, Variant, resolve_device, select, skip_reason
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend

THROUGHPUT_VARIANT = "tensorrt-fp16"
# (src, dst, loaded backend, max frames) -> {"frames": int, ...details}
FullRunner = Callable[[Path, Path, Backend, int], dict[str, Any]]


def default_work_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stylize-video" / "bench"


def _default_loader() -> Loader:
    try:
        from stylize_video.pipeline.backends import load_backend
    except ImportError as exc:
        raise StylizeError(f"stylize_video.pipeline.backends.load_backend is not available ({exc})") from None
    return load_backend


def with_compile_mode(loader: Loader, mode: str | None) -> Loader:
    """``loader`` with ``compile=True`` (the torch-compile variant) replaced by ``mode`` when one is given."""
    if mode is None:
        return loader

    def load(path: Path, **kwargs: Any) -> Backend:
        if kwargs.get("compile") is True:
            kwargs["compile"] = mode
        return loader(path, **kwargs)

    return load


@dataclass
class Hooks:
    """Injection points (tests use tiny fakes); None = the pipeline's real implementations."""

    loader: Loader | None = None
    full_runner: FullRunner | None = None
    caps: Capabilities | None = None
    artifacts: ArtifactFor | None = None
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)


def _fastest(bench: ModelBenchResult, clip_h: int) -> Variant | None:
    """The variant with the best FPS at the measured size closest to the clip's height."""
    ok = [r for r in bench.results if r.status == "ok" and r.fps]
    if not ok:
        return None
    nearest = min({r.height for r in ok}, key=lambda h: abs(h - clip_h))
    best = max((r for r in ok if r.height == nearest), key=lambda r: r.fps or 0.0)
    return VARIANTS.get(best.variant)


def _pipeline_full_runner() -> FullRunner | None:
    """``stylize_video.pipeline.job.stylize_file`` (what ``stylize-video`` runs), or None where the pipeline lacks it."""
    try:
        from stylize_video.pipeline.io.source import FileSourceOptions
        from stylize_video.pipeline.job import JobOptions, stylize_file
    except ImportError:
        return None

    def run(src: Path, dst: Path, backend: Backend, max_frames: int) -> dict[str, Any]:
        options = JobOptions(source=FileSourceOptions(max_frames=max_frames), overwrite=True, progress=False)
        stats = stylize_file(src, dst, backend, options)
        return {"frames": stats.frames, "stage_busy_s": dict(stats.stage_s), "pipeline_wall_s": stats.wall_s,
                "decode_path": stats.decode_path, "encode_path": stats.encode_path}

    return run


def _run_e2e(cfg: BenchConfig, bench: ModelBenchResult, artifacts: ArtifactFor, caps: Capabilities, loader: Loader,
             scale: int, work_dir: Path, hooks: Hooks) -> EndToEnd:
    """Stage ceilings and the full pipeline; a failure ends the section (with its reason), not the run."""
    if not cfg.e2e:
        return EndToEnd("skipped", "--no-e2e given")
    result = EndToEnd("ok")
    try:
        _fill_e2e(result, cfg, bench, artifacts, caps, loader, scale, work_dir, hooks)
    except Exception as exc:  # noqa: BLE001 - keep the model section's figures and what was measured here
        result.status, result.reason = "failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        hooks.log(f"fail end-to-end: {result.reason}")
    return result


def _fill_e2e(result: EndToEnd, cfg: BenchConfig, bench: ModelBenchResult, artifacts: ArtifactFor,
              caps: Capabilities, loader: Loader, scale: int, work_dir: Path, hooks: Hooks) -> None:
    size = cfg.clip_size or cfg.sizes[0]
    clip = cfg.video or e2e.ensure_clip(work_dir / "clips", size.width, size.height, cfg.e2e_frames)
    info = result.clip = e2e.probe_clip(clip)
    frames = min(info["frames"], cfg.e2e_frames)
    hooks.log(f"e2e  decode / encode ceilings on {clip.name} ({info['width']}x{info['height']}, {frames} frames)")
    result.stages.append(e2e.decode_ceiling(clip, frames))
    encode = e2e.encode_ceiling(clip, scale, frames, work_dir, e2e.EncodeSettings.pipeline_default(),
                                fps=round(info["fps"] or 30))
    variant = _fastest(bench, info["height"])
    if variant is None:  # unreachable after a successful model section; kept for direct callers
        why = "no backend ran in the model section"
        result.stages += [e2e.StageResult("model", "skipped", why), encode, e2e.StageResult("full", "skipped", why)]
        return
    load = {**variant.load, "device": resolve_device(variant, caps)}
    runner = hooks.full_runner or _pipeline_full_runner()
    # One backend for both figures: the full run starts warm and excludes model loading/compiling.
    with loader(artifacts(variant), **load) as backend:
        hooks.log(f"e2e  model ceiling with {variant.label}")
        model = e2e.model_ceiling(backend, info["width"], info["height"], min(cfg.iters, frames), cfg.warmup)
        model.detail["variant"] = variant.label
        result.stages += [model, encode]
        if runner is None:
            result.stages.append(e2e.StageResult("full", "skipped", "the pipeline has no file-to-file API "
                                                                    "(stylize_video.pipeline.job.stylize_file) in this checkout"))
            return
        hooks.log(f"e2e  full pipeline with {variant.label}")
        try:
            full = e2e.run_full(lambda src, dst: runner(src, dst, backend, frames), clip, work_dir)
            full.detail["variant"] = variant.label
        except Exception as exc:  # noqa: BLE001 - the pipeline failing is a result; the rest still reports
            full = e2e.StageResult("full", "failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        result.stages.append(full)


def _run_throughput(cfg: BenchConfig, caps: Capabilities, fmt: str, artifacts: ArtifactFor, loader: Loader,
                    size: FrameSize, hooks: Hooks, budget: Budget | None = None) -> Throughput:
    """TensorRT at every (batch, streams) pair, or the reason it cannot run here."""
    variant = VARIANTS[THROUGHPUT_VARIANT]
    reason = skip_reason(variant, caps, fmt) or (budget.spent() if budget else None)
    if reason is None:
        try:
            path = artifacts(variant)
        except SkipVariant as exc:
            reason = str(exc)
    if reason is not None:
        return Throughput("skipped", reason, variant.label, size)
    load = {**variant.load, "device": resolve_device(variant, caps)}
    try:
        points = run_throughput(lambda: loader(path, **load), cfg.throughput_batches, cfg.throughput_streams,
                                size.height, size.width, cfg.iters, cfg.warmup, cfg.seed, hooks.log)
    except Exception as exc:  # noqa: BLE001 - loading failed: report it, keep the other sections
        return Throughput("failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}", variant.label, size)
    status = "ok" if any(p.status == "ok" for p in points) else "failed"
    return Throughput(status, None if status == "ok" else "every point failed", variant.label, size, points)


def _default_throughput_size(scale: int) -> FrameSize:
    """1080p output: 1920x1080 for style, 480x270 input for x4 SR."""
    if scale <= 1:
        return parse_size("1080p")
    return FrameSize(f"{1080 // scale}p", 1920 // scale, 1080 // scale)


def run_benchmark(cfg: BenchConfig, argv: list[str] | None = None, hooks: Hooks | None = None) -> dict[str, Any]:
    """Run every section and return the validated result record."""
    hooks = hooks or Hooks()
    started = time.perf_counter()
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    machine = collect_machine(cfg.machine_label)  # before the run: its load average is other people's work
    work_dir = cfg.work_dir or default_work_dir()
    work_dir.mkdir(parents=True, exist_ok=True)
    if cfg.random_weights:
        model_path, fmt = make_random_checkpoint(cfg.random_weights, work_dir, cfg.seed), "ckpt"
    else:
        assert cfg.model is not None
        model_path, fmt = cfg.model, model_kind_of(cfg.model)
    model = describe_model(model_path, fmt, cfg.random_weights)
    scale = int(model["scale"] or 1)
    if not cfg.sizes:
        cfg.sizes = parse_sizes(DEFAULT_SIZES["sr" if model["task"] == "sr" else "style"])
    caps = hooks.caps or Capabilities.probe(cfg.device)
    loader = with_compile_mode(hooks.loader or _default_loader(), cfg.compile_mode)
    tp_size = cfg.throughput_size or _default_throughput_size(scale)
    shapes = [(cfg.batch, 3, s.height, s.width) for s in cfg.sizes]
    shapes += [(max(cfg.throughput_batches), 3, tp_size.height, tp_size.width)]
    if cfg.video is not None:  # the end-to-end section runs the clip's own size
        clip_info = e2e.probe_clip(cfg.video)
        shapes.append((1, 3, clip_info["height"], clip_info["width"]))
    else:
        cfg.clip_size = cfg.clip_size or cfg.sizes[0]
        shapes.append((1, 3, cfg.clip_size.height, cfg.clip_size.width))
    artifacts = hooks.artifacts or Artifacts(model_path, fmt, work_dir, task=model["task"], scale=scale,
                                             shapes=shapes, log=hooks.log)

    budget = Budget(cfg.budget_s)
    bench = run_model_bench(select(cfg.backends), artifacts, loader, caps, fmt, cfg.sizes, cfg.batch, cfg.iters,
                            cfg.warmup, cfg.seed, hooks.log, budget)
    if not any(r.status == "ok" for r in bench.results):
        reasons = "; ".join(f"{v.label}: {v.reason}" for v in bench.variants if v.reason)
        raise StylizeError(f"no backend produced a measurement ({reasons})")
    # The end-to-end section runs even when the budget is spent: it is one measurement and the one that
    # names the bottleneck; what --budget-s cuts is the model grid and the throughput matrix.
    end_to_end = _run_e2e(cfg, bench, artifacts, caps, loader, scale, work_dir, hooks)
    throughput = _run_throughput(cfg, caps, fmt, artifacts, loader, tp_size, hooks, budget)

    record = build_record(
        created=created, command=shlex.join(["stylize-bench", *(argv or [])]),
        duration_s=time.perf_counter() - started, machine=machine, model=model,
        sizes=cfg.sizes, batch=cfg.batch, iters=cfg.iters, warmup=cfg.warmup, seed=cfg.seed, bench=bench,
        e2e=end_to_end, throughput=throughput, notes=_notes(cfg, caps))
    errors = validate(record)
    if errors:  # a bug in this package, not a user error
        raise RuntimeError("result record does not match benchmarks/schema.json: " + "; ".join(errors[:5]))
    return record


def _notes(cfg: BenchConfig, caps: Capabilities) -> list[str]:
    notes = []
    if cfg.random_weights:
        notes.append(f"RANDOM weights ({cfg.random_weights}), explicitly requested with --random-weights: the "
                     "figures measure speed and backend agreement (PSNR), not stylization quality.")
    if not caps.cuda:
        notes.append(f"GPU variants are listed as skipped: {caps.no_gpu_reason}; CPU timings use time.perf_counter.")
    notes.append("Model-only figures exclude decode, colour conversion, host<->device copies and encode.")
    if cfg.compile_mode:
        notes.append(f"torch-compile-fp16 ran torch.compile mode {cfg.compile_mode!r} (--compile-mode), "
                     "not the default max-autotune.")
    return notes
