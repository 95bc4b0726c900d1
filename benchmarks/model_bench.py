"""Model-only benchmark: every backend variant at every size, against the FP32 baseline of the same run.

Input and output stay on the backend's device; nothing of decode, colour conversion, host<->device
copies or encode is inside these figures (the end-to-end section measures those).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from stylize_video.benchmarks.config import FrameSize
from stylize_video.benchmarks.machine import Capabilities
from stylize_video.benchmarks.quality import psnr, synthetic_frames
from stylize_video.benchmarks.timing import summarize, time_calls
from stylize_video.benchmarks.variants import BASELINE, Variant, resolve_device, skip_reason
from stylize_video.pipeline.backends.base import Backend

# load_backend(model_path, **variant.load) -> Backend; stylize_video.pipeline.backends.load_backend in production.
Loader = Callable[..., Backend]
# variant -> the model file that variant loads (a checkpoint, an exported ONNX, a plan), or raise SkipVariant.
ArtifactFor = Callable[[Variant], Path]


class SkipVariant(Exception):
    """A variant that cannot run here; the message is the reason shown in reports."""


@dataclass
class VariantStatus:
    """Whether a variant ran at all, and why not."""

    label: str
    description: str
    device: str
    precision: str
    status: str  # "ran" | "skipped" | "failed"
    reason: str | None = None
    backend_name: str | None = None
    load_s: float | None = None


@dataclass
class Budget:
    """A wall-clock allowance for a whole run (``--budget-s``); None = unlimited.

    Sections stop beginning new measurements at their share of it: the model grid at ``MODEL_SHARE``,
    the end-to-end stages at ``E2E_SHARE``, throughput points at the whole allowance, so that the
    later sections still get their turn and the reports are written in time.
    """

    seconds: float | None = None
    start: float = field(default_factory=time.monotonic)

    MODEL_SHARE = 0.6
    E2E_SHARE = 0.9

    def spent(self, share: float = 1.0) -> str | None:
        """The reason to skip what has not begun yet, or None while ``share`` of the allowance is left."""
        if self.seconds is None or time.monotonic() - self.start < share * self.seconds:
            return None
        part = "" if share >= 1.0 else f" ({share:.0%} of it for this section)"
        return f"time budget of {self.seconds:g} s spent{part} (--budget-s)"


@dataclass
class ModelResult:
    """One (variant, size) measurement; ``status`` "ok", "failed" or "skipped" (time budget; with ``reason``)."""

    variant: str
    size: str
    width: int
    height: int
    batch: int
    status: str
    reason: str | None = None
    timer: str | None = None
    stats: dict[str, Any] | None = None
    ms_per_frame: float | None = None
    ms_per_frame_p95: float | None = None
    fps: float | None = None
    wall_fps: float | None = None
    speedup: float | None = None
    psnr_db: float | None = None
    output_finite: bool | None = None
    memory: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ModelBenchResult:
    variants: list[VariantStatus]
    results: list[ModelResult]
    baseline: str


@contextlib.contextmanager
def fp32_strict() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and matmuls, so the FP32 baseline is IEEE FP32; restored after."""
    conv, rnn, matmul = torch.backends.cudnn.conv, torch.backends.cudnn.rnn, torch.backends.cuda.matmul
    if hasattr(conv, "fp32_precision"):  # torch >= 2.9: new API; mixing it with allow_tf32 raises
        saved = (conv.fp32_precision, rnn.fp32_precision, matmul.fp32_precision)
        conv.fp32_precision = rnn.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, rnn.fp32_precision, matmul.fp32_precision = saved
    else:
        legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _device_used_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / 2**20


def _prepare_device(device: torch.device) -> float | None:
    """Release cached blocks so the next variant's footprint is its own; device memory used now (MiB)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    return _device_used_mb(device)


def _measure_size(backend: Backend, variant: Variant, size: FrameSize, batch: int, iters: int, warmup: int,
                  seed: int, used_before_load: float | None) -> tuple[ModelResult, torch.Tensor | None]:
    """Time one size; return the result and the (CPU, float32) output for the PSNR comparison."""
    device = backend.device
    res = ModelResult(variant.label, size.label, size.width, size.height, batch, status="ok")
    x = synthetic_frames(batch, size.height, size.width, seed).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        timing = time_calls(lambda: backend(x), device, iters, warmup)
        y = backend(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    scale = backend.scale or 1
    expected = (batch, 3, size.height * scale, size.width * scale)
    if tuple(y.shape) != expected:
        res.status, res.reason = "failed", f"output shape {tuple(y.shape)}, expected {expected}"
        return res, None
    stats = summarize(timing.samples_ms)
    res.timer, res.stats = timing.timer, stats.to_dict()
    res.ms_per_frame, res.ms_per_frame_p95 = stats.median_ms / batch, stats.p95_ms / batch
    res.fps = 1000.0 * batch / stats.median_ms if stats.median_ms > 0 else None
    res.wall_fps = iters * batch / timing.wall_s if timing.wall_s > 0 else None
    if device.type == "cuda":
        used = _device_used_mb(device)
        res.memory = {"torch_peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20,
                      "device_used_delta_mb": None if used is None or used_before_load is None
                      else used - used_before_load}
    out = y.detach().float().cpu()
    res.output_finite = bool(torch.isfinite(out).all())
    return res, out


def run_model_bench(variants: list[Variant], artifact_for: ArtifactFor, loader: Loader, caps: Capabilities,
                    model_format: str, sizes: list[FrameSize], batch: int, iters: int, warmup: int,
                    seed: int = 0, log: Callable[[str], None] = lambda _: None,
                    budget: Budget | None = None,
                    progress: Callable[[ModelBenchResult], None] | None = None) -> ModelBenchResult:
    """Load each variant once, time it at every size, compare with the baseline measured just before.

    ``budget``: once its model share is spent, the variants and sizes not begun are reported as
    skipped (one already running, e.g. compiling, is not interrupted); the baseline always runs.
    ``progress``: called with the result so far after every measurement (reports written as measured)."""
    budget = budget or Budget()
    statuses: list[VariantStatus] = []
    results: list[ModelResult] = []
    so_far = ModelBenchResult(statuses, results, BASELINE)
    tell = progress or (lambda _: None)
    reference: dict[str, torch.Tensor] = {}  # size label -> baseline output
    baseline_ms: dict[str, float] = {}
    with fp32_strict():
        for variant in variants:
            device_name = resolve_device(variant, caps)
            st = VariantStatus(variant.label, variant.description, device_name, variant.precision, "ran")
            statuses.append(st)
            # The baseline always runs: every other figure is relative to it.
            tell(so_far)
            reason = ((None if variant.label == BASELINE else budget.spent(Budget.MODEL_SHARE))
                      or skip_reason(variant, caps, model_format))
            if reason is None:
                try:
                    model_path = artifact_for(variant)
                except SkipVariant as exc:
                    reason = str(exc)
                except Exception as exc:  # noqa: BLE001 - a failed export fails this variant only
                    st.status, st.reason = "failed", f"preparing its model file: {_first_line(exc)}"
                    log(f"fail {variant.label}: {st.reason}")
                    continue
            if reason is not None:
                st.status, st.reason = "skipped", reason
                log(f"skip {variant.label}: {reason}")
                continue
            device = torch.device(device_name)
            used_before = _prepare_device(device)
            load = {**variant.load, "device": device_name}
            t0 = time.perf_counter()
            try:
                backend = loader(model_path, **load)
            except Exception as exc:  # noqa: BLE001 - any load failure is a result to report, not a crash
                st.status, st.reason = "failed", _first_line(exc)
                log(f"fail {variant.label}: {st.reason}")
                continue
            st.load_s, st.backend_name = time.perf_counter() - t0, getattr(backend, "name", None)
            if variant.expect_name and st.backend_name != variant.expect_name:
                backend.close()
                st.status = "skipped"
                st.reason = (f"load_backend gave {st.backend_name}, not {variant.expect_name}: "
                             "the backend did not run what this variant names")
                log(f"skip {variant.label}: {st.reason}")
                continue
            if variant.precision == "fp16" and backend.precision == "fp32":  # an architecture without FP16 support
                backend.close()
                st.status, st.reason = "skipped", "the model runs in FP32 only (it does not support FP16)"
                log(f"skip {variant.label}: {st.reason}")
                continue
            with backend:
                for size in sizes:
                    spent = None if variant.label == BASELINE else budget.spent(Budget.MODEL_SHARE)
                    if spent:
                        results.append(ModelResult(variant.label, size.label, size.width, size.height, batch,
                                                   "skipped", spent))
                        log(f"skip {variant.label} {size.label}: {spent}")
                        continue
                    log(f"run  {variant.label} {size.label} batch {batch}")
                    try:
                        res, out = _measure_size(backend, variant, size, batch, iters, warmup, seed, used_before)
                    except Exception as exc:  # noqa: BLE001 - e.g. out of memory at 2160p: report, go on
                        res, out = ModelResult(variant.label, size.label, size.width, size.height, batch,
                                               "failed", _first_line(exc)), None
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    results.append(res)
                    if out is None:
                        tell(so_far)
                        continue
                    if variant.label == BASELINE:  # the reference itself: speed-up 1, no PSNR
                        reference[size.label], baseline_ms[size.label] = out, res.ms_per_frame or 0.0
                        res.speedup = 1.0
                    else:
                        _compare(res, out, reference.get(size.label), baseline_ms.get(size.label))
                    tell(so_far)
            mine = [r for r in results if r.variant == variant.label and r.status != "skipped"]
            if mine and all(r.status != "ok" for r in mine):
                st.status, st.reason = "failed", f"failed at every size (first: {mine[0].reason})"
    tell(so_far)
    return so_far


def _compare(res: ModelResult, out: torch.Tensor, ref: torch.Tensor | None, base_ms: float | None) -> None:
    """Speed-up and PSNR against the baseline of this size; both stay None when there is no baseline."""
    if base_ms and res.ms_per_frame:
        res.speedup = base_ms / res.ms_per_frame
    if ref is not None and res.output_finite:
        res.psnr_db = psnr(out, ref)
