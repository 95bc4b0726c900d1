"""The end-to-end section of a run: stage ceilings, then plain transcode vs the full pipeline, repeated.

Order: decode ceiling, encode ceiling, model ceiling, then ``--e2e-repeats`` pairs of (plain PyAV
decode -> encode, full pipeline) back to back, so both see the same machine load; which of the two runs first
alternates from pair to pair (plain first in pairs 1, 3, ...). Every stage checks the
time budget before it begins (``Budget.E2E_SHARE``); what has not begun is reported as skipped.

``pipeline_vs_plain`` (the median over the pairs) is the pipeline's frame-loop rate over the plain transcode's
rate. Both spans end when the output file is closed, the encoder's drain (x264's lookahead and frame threads)
included: the frame loop runs from opening the output to closing it (``RunStats.wall_s``, what ``stylize-video``
reports as fps; warm-up excluded), the plain transcode from opening the clip to closing its output. Each pair
also records the ratio with the pipeline's set-up (opening the input, warm-up: Numba kernel load, ORT session
warm-up) included: the whole ``stylize_file`` call.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stylize_video.benchmarks import e2e
from stylize_video.benchmarks.config import BenchConfig
from stylize_video.benchmarks.machine import Capabilities
from stylize_video.benchmarks.model_bench import ArtifactFor, Budget, Loader, ModelBenchResult
from stylize_video.benchmarks.record import EndToEnd
from stylize_video.benchmarks.variants import VARIANTS, Variant, resolve_device
from stylize_video.pipeline.backends.base import Backend

# (src, dst, loaded backend, max frames) -> {"frames": int, ...details}
FullRunner = Callable[[Path, Path, Backend, int], dict[str, Any]]


def pipeline_full_runner() -> FullRunner | None:
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
                "warmup_s": stats.warmup_s, "decode_path": stats.decode_path, "encode_path": stats.encode_path}

    return run


def fastest(bench: ModelBenchResult, clip_h: int) -> Variant | None:
    """The variant with the best FPS at the measured size closest to the clip's height."""
    ok = [r for r in bench.results if r.status == "ok" and r.fps]
    if not ok:
        return None
    nearest = min({r.height for r in ok}, key=lambda h: abs(h - clip_h))
    best = max((r for r in ok if r.height == nearest), key=lambda r: r.fps or 0.0)
    return VARIANTS.get(best.variant)


def run_e2e(cfg: BenchConfig, bench: ModelBenchResult, artifacts: ArtifactFor, caps: Capabilities, loader: Loader,
            scale: int, work_dir: Path, log: Callable[[str], None], full_runner: FullRunner | None = None,
            budget: Budget | None = None, progress: Callable[[EndToEnd], None] | None = None) -> EndToEnd:
    """Stage ceilings and the full pipeline; a failure ends the section (with its reason), not the run."""
    if not cfg.e2e:
        return EndToEnd("skipped", "--no-e2e given")
    result = EndToEnd("ok")
    try:
        _fill(result, cfg, bench, artifacts, caps, loader, scale, work_dir, log, full_runner, budget or Budget(),
              progress or (lambda _: None))
    except Exception as exc:  # noqa: BLE001 - keep the model section's figures and what was measured here
        result.status, result.reason = "failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        log(f"fail end-to-end: {result.reason}")
    return result


def _fill(result: EndToEnd, cfg: BenchConfig, bench: ModelBenchResult, artifacts: ArtifactFor, caps: Capabilities,
          loader: Loader, scale: int, work_dir: Path, log: Callable[[str], None], full_runner: FullRunner | None,
          budget: Budget, tell: Callable[[EndToEnd], None]) -> None:
    size = cfg.clip_size or cfg.sizes[0]
    clip = cfg.video or e2e.ensure_clip(work_dir / "clips", size.width, size.height, cfg.e2e_frames)
    info = result.clip = e2e.probe_clip(clip)
    frames = min(info["frames"], cfg.e2e_frames)
    result.load_average = [round(x, 2) for x in os.getloadavg()]

    def stage(name: str, measure: Callable[[], e2e.StageResult]) -> e2e.StageResult:
        spent = budget.spent(Budget.E2E_SHARE)
        res = e2e.StageResult(name, "skipped", spent) if spent else measure()
        if spent:
            log(f"skip e2e {name}: {spent}")
        result.stages.append(res)
        tell(result)
        return res

    settings = e2e.EncodeSettings.pipeline_default()
    log(f"e2e  decode / encode ceilings on {clip.name} ({info['width']}x{info['height']}, {frames} frames)")
    stage("decode", lambda: e2e.decode_ceiling(clip, frames))
    stage("encode", lambda: e2e.encode_ceiling(clip, scale, frames, work_dir, settings, fps=round(info["fps"] or 30)))
    variant = fastest(bench, info["height"])
    if variant is None:  # unreachable after a successful model section; kept for direct callers
        why = "no backend ran in the model section"
        result.stages += [e2e.StageResult(s, "skipped", why) for s in ("model", "plain", "full")]
        return
    load = {**variant.load, "device": resolve_device(variant, caps)}
    runner = full_runner or pipeline_full_runner()
    # One backend for every figure: the full runs start warm and exclude model loading/compiling.
    with loader(artifacts(variant), **load) as backend:
        log(f"e2e  model ceiling with {variant.label}")
        model = stage("model", lambda: e2e.model_ceiling(backend, info["width"], info["height"],
                                                         min(cfg.iters, frames), cfg.warmup))
        model.detail["variant"] = variant.label
        if runner is None:
            result.stages.append(e2e.StageResult("full", "skipped", "the pipeline has no file-to-file API "
                                                                    "(stylize_video.pipeline.job.stylize_file) in this checkout"))
            return
        _pairs(result, cfg, clip, frames, scale, work_dir, settings, lambda src, dst: runner(src, dst, backend, frames),
               variant.label, budget, log, tell)
    result.load_average.append(round(os.getloadavg()[0], 2))


def _pairs(result: EndToEnd, cfg: BenchConfig, clip: Path, frames: int, scale: int, work_dir: Path,
           settings: e2e.EncodeSettings, full: Callable[[Path, Path], dict[str, Any]], label: str, budget: Budget,
           log: Callable[[str], None], tell: Callable[[EndToEnd], None]) -> None:
    """``cfg.e2e_repeats`` (plain, full) pairs; the stages list keeps the median pair, ``runs`` all of them."""
    pairs: list[tuple[e2e.StageResult, e2e.StageResult]] = []
    for i in range(cfg.e2e_repeats):
        spent = budget.spent(Budget.E2E_SHARE)
        if spent:
            log(f"skip e2e pair {i + 1}/{cfg.e2e_repeats}: {spent}")
            if not pairs:
                result.stages += [e2e.StageResult("plain", "skipped", spent), e2e.StageResult("full", "skipped", spent)]
            break
        # Which side runs first alternates: on a shared machine neither gets the colder (or quieter) slot every time.
        full_first = i % 2 == 1
        order = "the full pipeline, then plain" if full_first else "plain decode -> encode, then the full pipeline"
        log(f"e2e  {order} with {label} ({i + 1}/{cfg.e2e_repeats})")
        whole = _full_stage(full, clip, work_dir, label) if full_first else None
        plain = e2e.plain_transcode(clip, scale, frames, work_dir, settings)
        whole = whole or _full_stage(full, clip, work_dir, label)
        pairs.append((plain, whole))
        result.runs.append({**_ratio(plain, whole), "first": "full" if full_first else "plain"})
        tell(result)
        if whole.status != "ok":
            break
    if not pairs:
        return
    ok = [r for r in result.runs if r["ratio"] is not None]
    if ok:
        result.pipeline_vs_plain = statistics.median(r["ratio"] for r in ok)
        median_pair = min(range(len(result.runs)), key=lambda k: abs((result.runs[k]["ratio"] or 0.0)
                                                                     - result.pipeline_vs_plain))
    else:
        median_pair = len(pairs) - 1
    result.stages += list(pairs[median_pair])
    tell(result)


def _full_stage(full: Callable[[Path, Path], dict[str, Any]], clip: Path, work_dir: Path, label: str) -> e2e.StageResult:
    """One full-pipeline run with its frame-loop fps; a failure is a result (the section still reports)."""
    try:
        whole = e2e.run_full(full, clip, work_dir)
    except Exception as exc:  # noqa: BLE001 - the pipeline failing is a result; the rest still reports
        return e2e.StageResult("full", "failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}")
    whole.detail["variant"] = label
    wall = whole.detail.get("pipeline_wall_s")
    whole.detail["loop_fps"] = whole.frames / wall if wall else None
    return whole


def _ratio(plain: e2e.StageResult, full: e2e.StageResult) -> dict[str, Any]:
    """One pair's figures: fps of each, the frame-loop ratio and the ratio with set-up included."""
    loop = full.detail.get("loop_fps") if full.status == "ok" else None
    ok = plain.status == "ok" and plain.fps and loop
    return {"plain_fps": plain.fps, "pipeline_fps": full.fps if full.status == "ok" else None, "pipeline_loop_fps": loop,
            "ratio": loop / plain.fps if ok else None,
            "ratio_incl_setup": full.fps / plain.fps if ok and full.fps else None,
            "load_average_1m": round(os.getloadavg()[0], 2)}
