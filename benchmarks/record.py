"""The result record (the JSON of ``schema.json``); report files are written atomically by ``cliargs``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stylize_video import cliargs
from stylize_video.benchmarks.config import FrameSize
from stylize_video.benchmarks.e2e import StageResult, name_bottleneck
from stylize_video.benchmarks.model_bench import ModelBenchResult
from stylize_video.benchmarks.throughput import ThroughputResult

SCHEMA_ID = "stylize-video/bench/1"
INPUT_DESCRIPTION = ("deterministic synthetic RGB batch (gradients, edges, mild noise), float32 0..255, "
                     "already on the backend's device")


@dataclass
class EndToEnd:
    status: str  # "ok" | "skipped" | "failed"
    reason: str | None = None
    clip: dict[str, Any] | None = None
    stages: list[StageResult] = field(default_factory=list)
    #: median over ``runs`` of the pipeline's frame-loop fps / the plain transcode's fps (same run)
    pipeline_vs_plain: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per (plain, full) pair
    load_average: list[float] = field(default_factory=list)  # 1/5/15-min load before the section, 1-min after

    def to_dict(self) -> dict[str, Any]:
        bottleneck = name_bottleneck(self.stages)
        by_stage = {s.stage: s for s in self.stages if s.status == "ok"}
        full, slow = by_stage.get("full"), by_stage.get(bottleneck or "")
        ratio = full.fps / slow.fps if full and slow and full.fps and slow.fps else None
        return {"status": self.status, "reason": self.reason, "clip": self.clip,
                "stages": [asdict(s) for s in self.stages], "bottleneck": bottleneck, "full_vs_ceiling": ratio,
                "pipeline_vs_plain": self.pipeline_vs_plain, "runs": self.runs, "load_average": self.load_average}


@dataclass
class Throughput:
    status: str
    reason: str | None = None
    variant: str = "tensorrt-fp16"
    size: FrameSize | None = None
    results: list[ThroughputResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "variant": self.variant,
                "size": asdict(self.size) if self.size else None, "results": [asdict(r) for r in self.results]}


def build_record(*, created: str, command: str, duration_s: float, machine: dict[str, Any],
                 model: dict[str, Any], sizes: list[FrameSize], batch: int, iters: int, warmup: int, seed: int,
                 bench: ModelBenchResult, e2e: EndToEnd, throughput: Throughput, notes: list[str]) -> dict[str, Any]:
    """Assemble the JSON document; ``validate.validate(record) == []`` for everything this returns."""
    return {
        "schema": SCHEMA_ID,
        "created": created,
        "command": command,
        "duration_s": duration_s,
        "machine": machine,
        "model": model,
        "settings": {"sizes": [asdict(s) for s in sizes], "batch": batch, "iters": iters, "warmup": warmup,
                     "seed": seed, "tf32": False, "input": INPUT_DESCRIPTION},
        "baseline": bench.baseline,
        "variants": [asdict(v) for v in bench.variants],
        "model_results": [asdict(r) for r in bench.results],
        "end_to_end": e2e.to_dict(),
        "throughput": throughput.to_dict(),
        "notes": notes,
    }


def write_json(path: Path, record: dict[str, Any]) -> Path:
    """The result record as JSON at ``path``, atomically (``cliargs.write_json``)."""
    cliargs.write_json(record, path)
    return Path(path)
