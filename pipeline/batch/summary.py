"""The batch summary (``--json``, ``--markdown``, the closing line) and the progress bar of the whole batch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from stylize_video.cliargs import EXIT_OK, EXIT_PARTIAL, progress_bar
from stylize_video.pipeline.batch.executor import Outcome


@dataclass
class InputReport:
    """One input: ``status`` "done" (written now), "reused" (complete from an earlier run) or "failed"."""

    input: str
    output: str | None = None
    status: str = "pending"
    error: str | None = None
    frames: int = 0
    segments: int = 0
    segments_reused: int = 0  # finished by an earlier run (manifest)
    retries: int = 0  # runs of its segments lost because their own worker died (each run again)
    warnings: list[str] = field(default_factory=list)

    def error_line(self) -> str:
        """The error of a failed input, with the input named once (most messages already name the file)."""
        error = self.error or ""
        return error if self.input in error else f"{self.input}: {error}"


@dataclass
class WorkerReport:
    """One worker process (``host:pid``); a restarted worker is a new one."""

    worker: str
    device: str
    backend: str
    segments: int = 0
    frames: int = 0
    busy_s: float = 0.0  # sum of its segments' wall times
    fixed_s: float = 0.0  # of which per-segment fixed costs (open + seek, warm-up, encoder start/close)
    load_s: float = 0.0  # loading the model (once per worker process)

    @property
    def fps(self) -> float:
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class BatchSummary:
    executor: str = "local"
    workers_requested: int = 0
    segment_seconds: float = 0.0
    inputs: list[InputReport] = field(default_factory=list)
    workers: dict[str, WorkerReport] = field(default_factory=dict)
    segments_total: int = 0
    segments_run: int = 0
    segments_reused: int = 0
    segments_failed: int = 0
    retries: int = 0
    restarts: int = 0
    frames: int = 0  # processed by this run
    wall_s: float = 0.0

    def add(self, report: InputReport, outcome: Outcome) -> None:
        """Account a finished segment of ``report``'s input."""
        report.retries += outcome.attempts - 1
        self.retries += outcome.attempts - 1
        r = outcome.result
        if r is None:
            self.segments_failed += 1
            return
        self.segments_run += 1
        self.frames += r.frames
        report.frames += r.frames
        for w in r.warnings:
            if w not in report.warnings:
                report.warnings.append(w)
        wr = self.workers.setdefault(r.worker, WorkerReport(r.worker, r.device, r.backend))
        wr.segments += 1
        wr.frames += r.frames
        wr.busy_s += r.wall_s
        wr.fixed_s += r.fixed_s
        wr.load_s += r.load_s

    @property
    def failed(self) -> list[InputReport]:
        return [i for i in self.inputs if i.status == "failed"]

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed else EXIT_OK

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["workers"] = [{**asdict(w), "fps": round(w.fps, 3)} for w in self.workers.values()]
        d["fps"] = round(self.fps, 3)
        d["exit_code"] = self.exit_code
        return d

    def line(self) -> str:
        done = sum(i.status == "done" for i in self.inputs)
        reused = sum(i.status == "reused" for i in self.inputs)
        text = (f"{len(self.inputs)} inputs: {done} written, {reused} already complete, {len(self.failed)} failed; "
                f"{self.segments_run} segments run ({self.segments_reused} reused), {self.frames} frames in "
                f"{self.wall_s:.1f} s = {self.fps:.1f} fps on {len(self.workers)} {self.executor} worker(s)")
        return text + (f"; {self.retries} segment retries after {self.restarts} worker restarts" if self.retries else "")

    def to_markdown(self) -> str:
        rows = ["# stylize-batch summary", "", self.line(), "",
                "| input | output | status | frames | segments (reused) | retries | note |", "|---|---|---|---|---|---|---|"]
        for i in self.inputs:
            note = (i.error or "; ".join(i.warnings)).replace("|", "\\|")
            rows.append(f"| {i.input} | {i.output or ''} | {i.status} | {i.frames} | {i.segments} ({i.segments_reused}) "
                        f"| {i.retries} | {note} |")
        rows += ["", "| worker | device | backend | segments | frames | busy s (fixed) | model load s | fps |",
                 "|---|---|---|---|---|---|---|---|"]
        for w in self.workers.values():
            rows.append(f"| {w.worker} | {w.device} | {w.backend} | {w.segments} | {w.frames} | {w.busy_s:.1f} "
                        f"({w.fixed_s:.1f}) | {w.load_s:.1f} | {w.fps:.1f} |")
        return "\n".join(rows) + "\n"


class BatchProgress:
    """tqdm over the frames of the segments this run processes: frames/s and ETA for the whole batch, segments
    done in the postfix. Drawn only when ``enabled`` (``cliargs.progress_enabled``: a terminal, no --quiet)."""

    def __init__(self, frames: int, segments: int, enabled: bool) -> None:
        self.segments, self.done = segments, 0
        self.bar = None
        if enabled and segments:
            self.bar = progress_bar(quiet=False, total=frames, unit="frame", smoothing=0.05, desc="stylize-batch")
            self.bar.set_postfix_str(f"segments 0/{segments}")

    def update(self, frames: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(frames)
            self.bar.set_postfix_str(f"segments {self.done}/{self.segments}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
