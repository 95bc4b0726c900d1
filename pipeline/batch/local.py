"""The default executor: worker processes on this machine (``concurrent.futures``, no extra dependency).

One worker per GPU (``cuda:0``, ``cuda:1``, ...) or ``--workers N`` on the CPU, each a spawned process that
loads the model once, on its first segment, and keeps it. A worker that dies breaks the pool (that is how
``ProcessPoolExecutor`` reports a lost process): the pool is started again and the segments that were running
go back in the queue, one attempt used. At most one segment per worker is in flight, so those are known.
Workers run in their own session: a Ctrl-C in the terminal reaches the driver only, which stops them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from stylize_video.pipeline.batch.executor import DEFAULT_ATTEMPTS, Outcome, Skip, error_line
from stylize_video.pipeline.batch.worker import SegmentResult, SegmentTask, SegmentWorker, WorkerConfig

_WORKER: SegmentWorker | None = None


def _init_worker(config: WorkerConfig, devices: multiprocessing.Queue) -> None:
    global _WORKER
    with contextlib.suppress(OSError, AttributeError):  # not on Windows
        os.setsid()
    _WORKER = SegmentWorker(config, devices.get())


def _run(task: SegmentTask) -> SegmentResult:
    return _WORKER.run(task)


class LocalExecutor:
    """Segments on ``len(devices)`` local worker processes, worker ``i`` on ``devices[i]`` ("cpu", "cuda:1")."""

    name = "local"

    def __init__(self, config: WorkerConfig, devices: list[str], attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.config, self.devices, self.attempts = config, devices, attempts
        self.size = len(devices)
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")  # fork would copy the driver's threads and CUDA state
        self.pool: ProcessPoolExecutor | None = None

    def _start(self) -> None:
        devices = self._ctx.Queue()
        for d in self.devices:
            devices.put(d)
        self.pool = ProcessPoolExecutor(self.size, mp_context=self._ctx, initializer=_init_worker,
                                        initargs=(self.config, devices))

    def _stop(self) -> None:
        if self.pool is None:
            return
        processes = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:  # a worker in the middle of a segment would finish it first
            with contextlib.suppress(Exception):
                p.kill()
                p.join(5)
        self.pool = None

    def __enter__(self) -> LocalExecutor:  # noqa: PYI034 - typing.Self needs Python 3.11
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def run(self, tasks: Iterable[SegmentTask], skip: Skip | None = None) -> Iterator[Outcome]:
        pending = deque(tasks)
        tries: dict[str, int] = {}
        inflight: dict[Future, SegmentTask] = {}
        while pending or inflight:
            while pending and len(inflight) < self.size:
                task = pending.popleft()
                if skip is not None and skip(task):
                    continue
                tries[task.key] = tries.get(task.key, 0) + 1
                inflight[self.pool.submit(_run, task)] = task
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = inflight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    inflight[future] = task  # handled with the others below
                except Exception as exc:  # noqa: BLE001 - reported as this segment's error
                    yield Outcome(task, error=error_line(exc), attempts=tries[task.key])
                else:
                    yield Outcome(task, result, attempts=tries[task.key])
            if broken:  # a worker died: every segment in flight was lost with the pool
                lost = list(inflight.values())
                inflight.clear()
                self._stop()
                self.restarts += 1
                self._start()
                for task in lost:
                    if tries[task.key] >= self.attempts:
                        yield Outcome(task, error=f"worker died {tries[task.key]} times on this segment",
                                      attempts=tries[task.key])
                    else:
                        pending.appendleft(task)
