"""The batch driver: inputs -> plans -> segment tasks -> executor -> joins, with the manifest for resuming.

Runs on the machine where ``stylize-batch`` was started. Everything that can be refused is refused before any
segment runs, leaving no file or folder behind (two inputs with one output name, an output over an input, an
output that exists and is not this batch's own complete result, a locked work folder, no input that can be
used); an input that cannot be read, or whose segment fails, is reported and the batch goes on. Each input is
joined as soon as its last segment is done, so finished outputs appear while the rest still runs; its segment
files are then deleted (``keep_segments`` keeps them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.executor import Executor, Outcome, error_line
from stylize_video.pipeline.batch.inputs import (
    InputFile,
    expand_inputs,
    output_encoder,
    own_outputs,
    plan_outputs,
)
from stylize_video.pipeline.batch.join import JoinOptions, join_segments
from stylize_video.pipeline.batch.manifest import (
    DEFAULT_WORK,
    Manifest,
    content_digest,
    digest,
    file_identity,
    locked,
    remove_empty_folders,
    remove_stale,
)
from stylize_video.pipeline.batch.segments import DEFAULT_SEGMENT_SECONDS, InputPlan, plan_input
from stylize_video.pipeline.batch.summary import BatchProgress, BatchSummary, InputReport
from stylize_video.pipeline.batch.worker import SEGMENT_SUFFIX, BadSegment, SegmentTask, WorkerConfig, timing_path
from stylize_video.pipeline.io.containers import check_codec_fits, check_crf
from stylize_video.pipeline.io.sink import CONTAINERS, EncoderOptions

# bump when the segment files' format changes: old segments are then not reused
SEGMENT_FORMAT_VERSION = 1
SEGMENTS = "segments"  # the work folder's sub-folder of segment files, one folder per input


@dataclass(frozen=True)
class BatchOptions:
    """Driver settings. ``work_dir`` None: ``out_dir/.stylize-batch``; ``ext`` None: per input (see ``inputs``)."""

    out_dir: Path
    work_dir: Path | None = None
    ext: str | None = None
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    overwrite: bool = False
    keep_segments: bool = False
    copy_audio: bool = True
    copy_subtitles: bool = True
    progress: bool = False

    @property
    def work(self) -> Path:
        return (self.work_dir or self.out_dir / DEFAULT_WORK).absolute()


@dataclass
class _Job:
    """One input of this run."""

    file: InputFile
    output: Path
    report: InputReport
    identity: list
    output_key: str
    encoder: EncoderOptions  # the batch's, with this output's codec resolved
    tasks: list[SegmentTask] = field(default_factory=list)
    remaining: set[str] = field(default_factory=set)


def segment_settings(config: WorkerConfig) -> str:
    """Digest of everything that changes a segment's bits (the model by content; not the worker count)."""
    c = dataclasses.asdict(config)
    c.pop("threads"), c.pop("queue_size")
    c["model"] = content_digest(Path(config.model))
    c["device"] = config.device.split(":")[0]
    c["precision"] = config.resolved_precision()
    return digest(c, SEGMENT_FORMAT_VERSION)


class BatchDriver:
    """Plans, runs (through an executor made by ``make_executor`` only when a segment must run) and joins."""

    def __init__(self, config: WorkerConfig, options: BatchOptions, make_executor: Callable[[], Executor],
                 executor_name: str = "local") -> None:
        self.config, self.options, self.make_executor = config, options, make_executor
        self.summary = BatchSummary(executor=executor_name, segment_seconds=options.segment_seconds)
        self.jobs: list[_Job] = []

    # -- before any work ---------------------------------------------------------------------------
    def prepare(self, inputs: list[str]) -> None:
        """Expand inputs and name outputs; StylizeError for name clashes, an output over an input, and when no
        input gives a file. Creates no file."""
        o = self.options
        codec = self.config.encoder.codec
        files, bad = expand_inputs(inputs, exclude=(o.out_dir / DEFAULT_WORK, o.work))
        if any(f.listed for f in files):
            files, more = own_outputs(files, o.out_dir, codec, o.ext, _recorded_outputs(o.work))
            bad += more
        for b in bad:
            self.summary.inputs.append(InputReport(b.arg, status="failed", error=b.error))
        if not files:
            raise StylizeError(nothing_usable(self.summary.inputs))
        self.outputs = plan_outputs(files, o.out_dir, codec, o.ext)
        self.files = files
        for out in self.outputs.values():  # --ext webm --codec libx264 and the like: refused now
            check_codec_fits(output_encoder(out, self.config.encoder.codec), CONTAINERS[out.suffix.lower()], str(out))
            check_crf(output_encoder(out, self.config.encoder.codec), self.config.encoder.crf)
        if o.out_dir.exists() and not o.out_dir.is_dir():
            raise StylizeError(f"--out-dir {o.out_dir} is not a folder")

    def check_outputs(self) -> None:
        """Under the work folder's lock: skip complete outputs, refuse existing foreign ones (StylizeError)."""
        o = self.options
        files, outputs = self.files, self.outputs
        self.seg_settings = segment_settings(self.config)
        self.join_settings = digest(o.copy_audio, o.copy_subtitles, o.segment_seconds, self.seg_settings)
        self.manifest = Manifest(o.work)
        exists = []
        for f in files:
            out = outputs[f.path]
            report = InputReport(str(f.path), str(out))
            self.summary.inputs.append(report)
            try:
                identity = file_identity(f.path)
            except OSError as exc:
                report.status, report.error = "failed", f"input not found: {f.path}" if isinstance(
                    exc, FileNotFoundError) else f"{f.path}: {exc.strerror or exc}"
                continue
            encoder = dataclasses.replace(self.config.encoder, codec=output_encoder(out, self.config.encoder.codec))
            job = _Job(f, out, report, identity, digest(identity, out.suffix, encoder.codec, self.join_settings),
                       encoder)
            if self.manifest.output_done(out, job.output_key):
                report.status = "reused"
                continue
            if out.exists() and not o.overwrite:
                exists.append(out)
            self.jobs.append(job)
        if exists:
            more = f" (and {len(exists) - 1} more)" if len(exists) > 1 else ""
            raise StylizeError(f"{exists[0]} exists{more} and is not this batch's result with these settings; "
                               "pass --overwrite to replace")

    def _plan(self, job: _Job) -> InputPlan:
        c = self.config
        key = digest(job.identity, self.options.segment_seconds, c.video_stream, dataclasses.asdict(c.deinterlace))
        cached = self.manifest.plans.get(key)
        if cached is not None:
            with contextlib.suppress(KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
                return InputPlan.from_dict(cached)  # (else probed again)
        plan = plan_input(job.file.path, self.options.segment_seconds, self.config.source_options())
        self.manifest.plans[key] = plan.to_dict()
        return plan

    def _tasks(self, job: _Job, plan: InputPlan) -> None:
        folder = self.options.work / SEGMENTS / f"{job.file.path.stem[:40]}-{digest(job.identity)[:8]}"
        job.report.segments = len(plan.segments)
        for seg in plan.segments:
            key = digest(job.identity, seg.to_list(), self.seg_settings, job.encoder.codec)
            path = folder / f"{seg.index:05d}-{key}{SEGMENT_SUFFIX}"
            task = SegmentTask(key, str(job.file.path), seg.index, seg.lo, seg.hi, seg.seek, seg.frames, str(path),
                               job.encoder)
            job.tasks.append(task)
            if self.manifest.segment_done(key, path):
                job.report.segments_reused += 1
                job.report.frames += self.manifest.segments[key]["frames"]
                continue
            if self.manifest.segments.pop(key, None) is not None:
                job.report.warnings.append(f"segment {seg.index}: its file from an earlier run is missing, cut "
                                           "short or changed; processed again")
            job.remaining.add(key)

    def plan(self) -> None:
        """Under the lock, after ``check_outputs``: probe each input (or take its plan from the manifest) and list
        its segments; an input that cannot be read fails alone. StylizeError when no input is left to write or
        complete (every one missing, unreadable or not a video): that is an error of the whole batch, and nothing
        has been written yet."""
        for job in self.jobs:
            try:
                self._tasks(job, self._plan(job))
            except StylizeError as exc:
                job.report.status, job.report.error = "failed", str(exc)
        if all(r.status == "failed" for r in self.summary.inputs):
            raise StylizeError(nothing_usable(self.summary.inputs))

    # -- work --------------------------------------------------------------------------------------
    def run(self) -> BatchSummary:
        """Run the missing segments, join; returns the summary (never raises for one input). Call with the work
        folder locked, after ``plan``."""
        o = self.options
        t0 = time.perf_counter()
        remove_stale(o.work)
        try:
            for job in self.jobs:
                for stale in o.out_dir.glob(f".{job.output.name}.*.inprogress"):
                    stale.unlink(missing_ok=True)
            self.manifest.save()
            live = [j for j in self.jobs if j.report.status != "failed"]
            self.summary.segments_total = sum(len(j.tasks) for j in live)
            self.summary.segments_reused = sum(j.report.segments_reused for j in live)
            for job in live:
                if not job.remaining:
                    self._join(job)
            todo = [t for j in live for t in j.tasks if t.key in j.remaining]
            if todo:
                self._execute(todo, {t.key: j for j in live for t in j.tasks})
            self.manifest.save()
        finally:
            remove_empty_folders(o.work / SEGMENTS)  # of inputs that failed, or whose worker was stopped
        self.summary.wall_s = time.perf_counter() - t0
        return self.summary

    def _execute(self, todo: list[SegmentTask], job_of: dict[str, _Job]) -> None:
        progress = BatchProgress(sum(t.frames for t in todo), len(todo), self.options.progress)
        try:
            with self.make_executor() as executor:
                self.summary.workers_requested = executor.size
                for outcome in executor.run(todo, skip=lambda t: job_of[t.key].report.status == "failed"):
                    self._finished(job_of[outcome.task.key], outcome)
                    progress.update(outcome.result.frames if outcome.result else outcome.task.frames)
                self.summary.restarts = executor.restarts
        finally:
            progress.close()

    def _finished(self, job: _Job, outcome: Outcome) -> None:
        task, r = outcome.task, outcome.result
        if outcome.fatal:  # the model: every other segment would fail the same way
            raise StylizeError(outcome.error)
        self.summary.add(job.report, outcome)
        if r is None:
            job.report.status = "failed"
            job.report.error = job.report.error or f"segment {task.index}: {outcome.error}"
            return
        if r.frames < r.expected:
            job.report.warnings.append(f"segment {task.index}: {r.frames} frames decoded where the stream has "
                                       f"{r.expected} (damaged packets?)")
        self.manifest.segments[task.key] = {"path": task.path, "frames": r.frames, "size": r.size,
                                            "packets": r.packets, "worker": r.worker, "wall_s": round(r.wall_s, 3),
                                            "fixed_s": round(r.fixed_s, 3), "warmup_s": round(r.warmup_s, 3)}
        self.manifest.save()
        job.remaining.discard(task.key)
        if not job.remaining and job.report.status != "failed":
            self._join(job)

    def _join(self, job: _Job) -> None:
        """Join ``job``'s segments into its output. Any failure fails this input only; a segment file found
        unreadable is deleted and forgotten, so that the next run processes it again."""
        o = self.options
        paths = [Path(t.path) for t in job.tasks]
        options = JoinOptions(o.copy_audio, o.copy_subtitles, self.config.apply_rotation, overwrite=True)
        try:
            o.out_dir.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                join_segments(job.file.path, paths, job.output, job.encoder, options, self.config.source_options())
        except BadSegment as exc:
            task = next(t for t in job.tasks if Path(t.path) == exc.path)
            self._forget(task)
            self.manifest.save()
            job.report.status = "failed"
            job.report.error = (f"joining the segments: segment {task.index} is unreadable ({exc.why}); deleted it: "
                                "the next run processes it again")
            return
        except Exception as exc:  # noqa: BLE001 - one input's join must not end the batch
            job.report.status, job.report.error = "failed", f"joining the segments: {error_line(exc)}"
            return
        job.report.warnings += [str(w.message) for w in caught if str(w.message) not in job.report.warnings]
        self.manifest.record_output(job.output, job.output_key)
        if not o.keep_segments:
            for t in job.tasks:
                self._forget(t)
        self.manifest.save()
        job.report.status = "done"

    def _forget(self, task: SegmentTask) -> None:
        """Delete a segment's files and its manifest entry (the caller saves the manifest)."""
        for p in (Path(task.path), timing_path(task.path)):
            with contextlib.suppress(OSError):
                p.unlink()
        self.manifest.segments.pop(task.key, None)


def nothing_usable(reports: list[InputReport]) -> str:
    """The one error line of a batch none of whose inputs can be used (``reports``: every one failed)."""
    errors = [r.error_line() for r in reports]
    if len(errors) == 1:
        return errors[0]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"none of the {len(errors)} inputs can be used: {'; '.join(errors[:3])}{more}"


def _recorded_outputs(work: Path) -> frozenset[Path]:
    """Outputs the manifest in ``work`` records (resolved), read without the lock (it is replaced atomically);
    none when there is no manifest or it is unreadable (the locked read reports that)."""
    try:
        return frozenset(Path(p).resolve() for p in Manifest(work).outputs)
    except (StylizeError, OSError):
        return frozenset()


def run_batch(inputs: list[str], config: WorkerConfig, options: BatchOptions,
              make_executor: Callable[[], Executor], executor_name: str = "local") -> BatchSummary:
    """``stylize-batch`` as a function: refuse conflicts (StylizeError), then run. See ``BatchDriver``. A run
    refused under the lock removes the folders it made for it (``locked``)."""
    driver = BatchDriver(config, options, make_executor, executor_name)
    driver.prepare(inputs)
    with locked(options.work, options.out_dir):
        driver.check_outputs()
        driver.plan()
        return driver.run()
