"""The live loop: decode thread -> newest frame -> model -> encoder/virtual camera, with latency accounting."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.live.latency import LiveReport
from pipeline.live.realtime import BoundedQueue, LatestSlot
from pipeline.live.sinks import FrameSink
from pipeline.live.source import FrameReader, TimedFrame


@dataclass
class LiveConfig:
    """``realtime``: keep the newest frame and drop late ones; else a ``queue_size`` FIFO that slows the reader."""

    realtime: bool = True
    queue_size: int = 2
    max_frames: int | None = None  # stop after this many output frames
    duration_s: float | None = None  # stop after this much wall time
    poll_s: float = 0.25  # how often an idle loop checks its stop conditions


def run_live(reader: FrameReader, process: Callable[[np.ndarray], np.ndarray], sink: FrameSink,
             config: LiveConfig, *, on_frame: Callable[[LiveReport], None] | None = None) -> LiveReport:
    """Run until the input ends, ``max_frames``/``duration_s`` is reached or Ctrl-C; always closes both ends.

    Ctrl-C ends the run normally (``report.interrupted``), so the summary and stats are still produced.

    ``process``: (H, W, 3) uint8 RGB -> (H', W', 3) uint8 RGB (e.g. a ``Stylizer``).
    Latency per frame = from the frame leaving the decoder (after pacing) to the encoder/muxer returning.
    """
    mailbox: LatestSlot[TimedFrame] | BoundedQueue[TimedFrame] = (
        LatestSlot() if config.realtime else BoundedQueue(config.queue_size))
    report = LiveReport(realtime=config.realtime, paced=reader.paced)
    start = time.perf_counter()
    reader.start(mailbox)
    try:
        try:
            while True:
                if config.duration_s is not None and time.perf_counter() - start >= config.duration_s:
                    break
                item = mailbox.get(timeout=config.poll_s)
                if item is None:
                    if reader.finished:
                        break
                    continue
                report.max_backlog = max(report.max_backlog, reader.produced - item.index - 1)
                t0 = time.perf_counter()
                out = process(item.rgb)
                report.model_time.add(time.perf_counter() - t0)
                sink.write(out, item.time_s)
                report.latency.add(time.perf_counter() - item.t_decoded)
                report.frames_out += 1
                if on_frame is not None:
                    on_frame(report)
                if config.max_frames is not None and report.frames_out >= config.max_frames:
                    break
        except KeyboardInterrupt:  # Ctrl-C is how a live run normally ends
            report.interrupted = True
        failed = False
    except BaseException:
        failed = True
        raise
    finally:
        mailbox.abort()
        reader.stop()
        report.wall_s = time.perf_counter() - start
        report.frames_in = reader.produced
        report.dropped = mailbox.dropped
        if failed or reader.error is not None:
            sink.abort()
        else:
            sink.close()
    if reader.error is not None:
        raise reader.error
    return report


def write_stats_json(report: LiveReport, path: str | os.PathLike[str], extra: dict | None = None) -> Path:
    """Write the report as JSON (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps({**(extra or {}), **report.to_dict()}, indent=2) + "\n")
    os.replace(tmp, path)
    return path
