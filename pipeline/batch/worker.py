"""The worker side: one loaded model, many segments. Used by both executors (a local process, a Ray actor).

A segment is decoded with ``FileSource`` (seek + PTS window), run through the same frame path as
``stylize-video`` (``stylize_video.pipeline.job.stylize``: colour conversion, model, rotation, histogram
matching) and encoded with the batch's encoder settings into a video-only NUT file (bitstream and codec
parameters) plus a JSON sidecar with each packet's PTS, DTS and duration exactly as the encoder gave them: NUT stores
no packet durations and shifts timestamps when an encoder with B-frames starts its DTS before 0, so the join
takes the timing from the sidecar (packet by packet, in decode order) and only the data from the NUT file.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.deinterlace import DeinterlaceOptions
from stylize_video.pipeline.io.sink import EncoderOptions, FileSink
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions

if TYPE_CHECKING:  # annotations only: the worker's config stays importable without onnx/torch
    from stylize_video.export.conventions import ConventionFlags
    from stylize_video.pipeline.tiling import TileOptions

SEGMENT_FORMAT = "nut"
SEGMENT_SUFFIX = ".nut"
TIMING_SUFFIX = ".timing.json"


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to process any segment of the batch (identical for every worker).

    ``device``: "cpu" or "cuda" (the executor gives each worker its GPU); ``precision`` None = fp16 on CUDA,
    fp32 on the CPU; ``threads``: torch CPU threads per worker (None: torch's default); ``encoder``: the
    user's options (each segment task carries them with its output's codec resolved); ``video_stream`` and
    ``deinterlace`` as ``FileSourceOptions``; ``convention`` and ``tile`` as ``load_backend`` takes them.
    """

    model: str
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = None
    compile: bool | str = False
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    apply_rotation: bool = False
    match_histogram: bool = False
    hwdec: bool = False
    queue_size: int = 4
    threads: int | None = None
    video_stream: int | None = None
    deinterlace: DeinterlaceOptions = field(default_factory=DeinterlaceOptions)
    convention: ConventionFlags | None = None  # --value-range/--layout/--channel-order of a foreign ONNX file
    tile: TileOptions | None = None  # --tile/--tile-overlap/--tile-batch

    def resolved_precision(self) -> str:
        return self.precision or ("fp16" if self.device.startswith("cuda") else "fp32")

    def source_options(self, **kw: object) -> FileSourceOptions:
        """``FileSourceOptions`` for this batch's inputs (the probe, the workers and the join read alike)."""
        return FileSourceOptions(video_stream=self.video_stream, deinterlace=self.deinterlace, **kw)


@dataclass(frozen=True)
class SegmentTask:
    """Segment ``index`` of ``input``: frames ``lo <= pts < hi`` after a seek to ``seek`` (see ``segments``),
    encoded with ``encoder`` (its output's codec resolved) to ``path``. ``key`` names it in the manifest;
    ``frames`` is what the stream holds in the range."""

    key: str
    input: str
    index: int
    lo: int | None
    hi: int | None
    seek: int | None
    frames: int
    path: str
    encoder: EncoderOptions = field(default_factory=EncoderOptions)


@dataclass
class SegmentResult:
    """What a worker reports for a finished segment (its file is complete under ``task.path``)."""

    key: str
    frames: int
    expected: int
    wall_s: float  # this segment, open to close (the model load excluded)
    fixed_s: float  # of which not spent on frames: open + seek, warm-up, encoder start and close
    load_s: float  # loading the model (a worker's first segment only; 0 after)
    warmup_s: float
    stage_s: dict[str, float]
    worker: str  # host:pid
    device: str
    backend: str
    corrupt: int = 0
    warnings: list[str] = field(default_factory=list)
    size: int = 0  # bytes of the segment file, and its packets, as written (a resume checks them)
    packets: int = 0


class ModelError(StylizeError):
    """The model did not load on a worker, or does not fit the options (``--match-histogram`` on a style
    model): every segment would fail the same way, so the driver stops the batch (one line, exit 1)."""


def timing_path(segment: str | os.PathLike[str]) -> Path:
    """The sidecar of a segment file: ``seg.nut`` -> ``seg.timing.json``."""
    return Path(segment).with_suffix(TIMING_SUFFIX)


class BadSegment(StylizeError):
    """A segment file (or its timing sidecar) that cannot be read as the worker wrote it: empty, cut short,
    overwritten. ``path``: the segment file; the driver drops it so that the next run processes it again."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"segment file {path.name} is unreadable ({why})")
        self.path, self.why = path, why

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.why)


def read_timing(path: Path, time_base: Fraction | None = None) -> dict[str, list[int]]:
    """A segment's timing sidecar (``worker.SegmentSink``): packet PTS, DTS and durations in decode order, in
    ``time_base`` (checked when given). ``BadSegment`` when it is missing, not JSON, or not that shape."""
    side = timing_path(path)
    try:
        timing = json.loads(side.read_text())
        tb = Fraction(timing["time_base"])
        lists = [timing[k] for k in ("pts", "dts", "duration")]
        if not all(isinstance(x, list) and len(x) == len(lists[0]) for x in lists) or not all(
                type(v) is int for x in lists for v in x):
            raise ValueError("pts, dts and duration are not lists of integers of one length")
    except (OSError, ValueError, TypeError, KeyError, ZeroDivisionError) as exc:
        why = f"missing key {exc}" if isinstance(exc, KeyError) else (getattr(exc, "strerror", None) or str(exc))
        raise BadSegment(path, f"timing {side.name}: {why}") from None
    if time_base is not None and tb != time_base:
        raise BadSegment(path, f"encoded in time base {timing['time_base']}, not {time_base}")
    return timing


class SegmentSink(FileSink):
    """Video-only NUT segment (a ``FileSink``: temporary name, atomic rename) that also records each video
    packet's PTS, DTS and duration (encoder time base = the input stream's) into ``timing_path(path)``, written
    just before the segment gets its final name."""

    def __init__(self, path: str | os.PathLike[str], encoder: EncoderOptions) -> None:
        super().__init__(path, encoder, overwrite=True, format=SEGMENT_FORMAT)
        self.timing: dict[str, list[int]] = {"pts": [], "dts": [], "duration": []}

    def _mux(self, packets: list[av.Packet]) -> None:
        for p in packets:
            if p.stream is self.video and p.size:
                if p.time_base != self.spec.time_base or p.pts is None:
                    raise StylizeError(f"encoder {self.encoder.codec} returned a packet without a timestamp in "
                                       f"{self.spec.time_base}")
                self.timing["pts"].append(p.pts)
                self.timing["dts"].append(p.pts if p.dts is None else p.dts)
                self.timing["duration"].append(p.duration or 0)
        super()._mux(packets)

    def _finish(self) -> bool:
        if not super()._finish():
            return False
        self.timing["time_base"] = str(self.spec.time_base)
        write_json_atomic(timing_path(self.path), self.timing)
        return True


def write_json_atomic(path: Path, data: object) -> None:
    """``data`` as JSON under ``path``, written to a temporary name first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.inprogress")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SegmentWorker:
    """Processes segments with one model, loaded on the first segment and kept (``close`` releases it)."""

    def __init__(self, config: WorkerConfig, device: str) -> None:
        self.config = config
        self.device = device
        self.backend = None
        if config.threads and device == "cpu":
            import torch

            torch.set_num_threads(config.threads)

    def _load(self):  # -> Backend
        """The backend, loaded on the first call; ``ModelError`` when it cannot be (or does not fit the options)."""
        if self.backend is None:
            from stylize_video.pipeline.backends import load_backend
            from stylize_video.pipeline.batch.executor import error_line
            from stylize_video.pipeline.job import check_match_histogram

            c = self.config
            try:
                backend = load_backend(c.model, c.backend, self.device, c.resolved_precision(), c.compile,
                                       convention=c.convention, tile=c.tile)
            except Exception as exc:  # noqa: BLE001 - whatever it is, every segment would meet it
                raise ModelError(error_line(exc)) from None
            try:
                check_match_histogram(c.match_histogram, backend.scale)
            except StylizeError as exc:
                backend.close()
                raise ModelError(str(exc)) from None
            self.backend = backend
        return self.backend

    def run(self, task: SegmentTask) -> SegmentResult:
        """Process ``task``; raises ``StylizeError`` for bad input (the segment's file is then not written).

        A segment that comes out short of frames after its seek (an index or a keyframe flag that lied) is
        decoded again from the start of the file, which one ``stylize-video`` run would do too.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            backend = self._load()
            load_s, t0 = time.perf_counter() - t0, time.perf_counter()
            stats, packets = self._stylize(task, task.seek, backend)
            if stats.frames < task.frames and task.seek is not None:
                warnings.warn(f"segment {task.index}: {stats.frames} of {task.frames} frames after seeking; "
                              "decoded again from the start of the file", stacklevel=2)
                stats, packets = self._stylize(task, None, backend)
        notes = list(dict.fromkeys(str(w.message) for w in caught))
        wall = time.perf_counter() - t0
        return SegmentResult(task.key, stats.frames, task.frames, wall, wall - stats.wall_s, load_s, stats.warmup_s,
                             dict(stats.stage_s), worker_name(), str(backend.device), backend.name,
                             stats.corrupt_packets, notes, Path(task.path).stat().st_size, packets)

    def _stylize(self, task: SegmentTask, seek: int | None, backend: object):  # -> (RunStats, packets written)
        from stylize_video.pipeline.job import JobOptions, stylize

        c = self.config
        gpu = int(self.device.partition(":")[2] or 0) if self.device.startswith("cuda") else 0
        opts = c.source_options(seek_pts=seek, pts_window=(task.lo, task.hi), hwdec=c.hwdec, hwdec_device=gpu,
                                copy_audio=False, copy_subtitles=False)
        Path(task.path).parent.mkdir(parents=True, exist_ok=True)
        source = FileSource(task.input, opts)
        sink = SegmentSink(task.path, task.encoder)
        try:
            stats = stylize(source, sink, backend,
                            JobOptions(apply_rotation=c.apply_rotation, progress=False, queue_size=c.queue_size,
                                       match_histogram=c.match_histogram))
        finally:
            source.close()
        if stats.interrupted or stats.output is None:
            raise StylizeError(f"segment {task.index} of {task.input} was interrupted")
        return stats, len(sink.timing["pts"])

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
