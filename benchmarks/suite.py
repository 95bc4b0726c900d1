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
from stylize_video.benchmarks.e2e_section import FullRunner, run_e2e
from stylize_video.benchmarks.identity import make_identity_onnx
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
from stylize_video.benchmarks.variants import BASELINE, VARIANTS, resolve_device, select, skip_reason
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend

THROUGHPUT_VARIANT = "tensorrt-fp16"
PARTIAL_NOTE = "PARTIAL: written while the run was going; sections not reached are marked as not measured."


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
    #: called with a schema-valid record of everything measured so far, after every measurement
    progress: Callable[[dict[str, Any]], None] | None = None


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
    if cfg.identity_model:
        model_path, fmt = make_identity_onnx(work_dir), "onnx"
    elif cfg.random_weights:
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
    partial = _Partial(created, ["stylize-bench", *(argv or [])], started, machine, model, cfg, _notes(cfg, caps),
                       hooks.progress)
    bench = run_model_bench(select(cfg.backends), artifacts, loader, caps, fmt, cfg.sizes, cfg.batch, cfg.iters,
                            cfg.warmup, cfg.seed, hooks.log, budget, progress=partial.on_model)
    if not any(r.status == "ok" for r in bench.results):
        reasons = "; ".join(f"{v.label}: {v.reason}" for v in bench.variants if v.reason)
        raise StylizeError(f"no backend produced a measurement ({reasons})")
    partial.end_to_end = run_e2e(cfg, bench, artifacts, caps, loader, scale, work_dir, hooks.log, hooks.full_runner,
                                 budget, progress=partial.on_e2e)
    throughput = _run_throughput(cfg, caps, fmt, artifacts, loader, tp_size, hooks, budget)
    partial.throughput = throughput
    return partial.record()


@dataclass
class _Partial:
    """What a run has measured so far, as a valid record: reports are written as measurements come in,
    so a run stopped by a timeout or SIGTERM still leaves them (the CLI writes the last one)."""

    created: str
    argv: list[str]
    started: float
    machine: dict[str, Any]
    model: dict[str, Any]
    cfg: BenchConfig
    notes: list[str]
    sink: Callable[[dict[str, Any]], None] | None
    bench: ModelBenchResult | None = None
    end_to_end: EndToEnd | None = None
    throughput: Throughput | None = None

    def on_model(self, bench: ModelBenchResult) -> None:
        self.bench = bench
        self._tell()

    def on_e2e(self, result: EndToEnd) -> None:
        self.end_to_end = result
        self._tell()

    def _tell(self) -> None:
        if self.sink is not None:
            self.sink(self.record(final=False))

    def record(self, final: bool = True) -> dict[str, Any]:
        cfg = self.cfg
        pending = "not measured yet (the run was stopped before this section)"
        notes = list(self.notes) if final else [*self.notes, PARTIAL_NOTE]
        record = build_record(
            created=self.created, command=shlex.join(self.argv), duration_s=time.perf_counter() - self.started,
            machine=self.machine, model=self.model, sizes=cfg.sizes, batch=cfg.batch, iters=cfg.iters,
            warmup=cfg.warmup, seed=cfg.seed, bench=self.bench or ModelBenchResult([], [], BASELINE),
            e2e=self.end_to_end or EndToEnd("skipped", pending), throughput=self.throughput or Throughput("skipped", pending),
            notes=notes)
        errors = validate(record)
        if errors:  # a bug in this package, not a user error
            raise RuntimeError("result record does not match benchmarks/schema.json: " + "; ".join(errors[:5]))
        return record


def _notes(cfg: BenchConfig, caps: Capabilities) -> list[str]:
    notes = []
    if cfg.identity_model:
        notes.append("IDENTITY model (--identity-model: output = input, one Mul node): the end-to-end figures "
                     "measure the frame path itself (decode, colour conversion, copies, encode); "
                     "pipeline_vs_plain compares it with a plain PyAV decode -> encode with the same encoder "
                     "settings.")
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
