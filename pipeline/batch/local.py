"""The default executor: worker processes on this machine (``concurrent.futures``, no extra dependency).

One worker per GPU (``cuda:0``, ``cuda:1``, ...) or ``--workers N`` on the CPU, each a spawned process that
loads the model once, on its first segment, and keeps it. A worker that dies breaks the pool (that is how
``ProcessPoolExecutor`` reports a lost process): the pool is started again and the segments that were running
go back in the queue. Only the segment whose worker died uses one of its attempts (each worker notes in shared
memory which run it is on); the others were lost with the pool through no fault of theirs. At most one segment
per worker is in flight, so those are known.

Workers ignore SIGINT and run in their own session: a Ctrl-C in the terminal reaches the driver only, which
stops them (a worker still starting when it came is started with SIGINT blocked: ``sigint``); the stop kills
every worker and waits for them and for the pool's manager thread, so that nothing of the pool runs on, or
writes to stderr, after the driver's last line. Workers end when the driver is gone, even when it was killed
outright (``parent_watch``): nothing keeps running, or holds a GPU, for a batch that nobody will join.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from stylize_video.pipeline.batch.executor import DEFAULT_ATTEMPTS, Outcome, Skip, failed
from stylize_video.pipeline.batch.parent_watch import end_with_parent
from stylize_video.pipeline.batch.sigint import ignore_sigint, sigint_held
from stylize_video.pipeline.batch.worker import SegmentResult, SegmentTask, SegmentWorker, WorkerConfig

T = TypeVar("T")
_WORKER: SegmentWorker | None = None
_SLOT: tuple[object, int] | None = None  # (the pool's shared run table, this worker's row)


def _init_worker(config: WorkerConfig, devices: multiprocessing.Queue, slots: object, parent: int) -> None:
    global _WORKER, _SLOT
    ignore_sigint()
    with contextlib.suppress(OSError, AttributeError):  # not on Windows
        os.setsid()
    end_with_parent(parent)
    row, device = devices.get()
    slots[2 * row] = os.getpid()
    _SLOT = (slots, row)
    _WORKER = SegmentWorker(config, device)


def _run(task: SegmentTask, run: int) -> SegmentResult:
    slots, row = _SLOT
    slots[2 * row + 1] = run  # which run this process is on, should it die
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
        for row, d in enumerate(self.devices):
            devices.put((row, d))
        # per worker: its pid and the run it is on (plain shared memory: a dying writer cannot leave a lock held)
        self._slots = self._ctx.RawArray("q", 2 * self.size)
        self.pool = ProcessPoolExecutor(self.size, mp_context=self._ctx, initializer=_init_worker,
                                        initargs=(self.config, devices, self._slots, os.getpid()))

    def _stop(self) -> None:
        """Kill the workers (one in the middle of a segment would finish it first), then shut the pool down and
        wait for its manager thread, which has nothing left to wait for (it sees them gone). Ctrl-C meanwhile is
        raised after."""
        if self.pool is None:
            return
        with sigint_held():
            processes = self._processes()
            for p in processes:
                with contextlib.suppress(Exception):
                    p.kill()
            for p in processes:
                with contextlib.suppress(Exception):
                    p.join(5)
            stuck = any(p.exitcode is None for p in processes)  # (in the kernel, a GPU driver call: not waited for)
            self.pool.shutdown(wait=not stuck, cancel_futures=True)
            self.pool = None

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """``fn(*args)`` on a worker (the pool starts one here when it has fewer than ``size``: see ``sigint``)."""
        with sigint_held():
            return self.pool.submit(fn, *args)

    def _processes(self) -> list:
        return list((getattr(self.pool, "_processes", None) or {}).values())

    def _died(self, processes: list) -> set[int] | None:
        """Runs whose worker ended by itself (killed, crashed, out of memory), as opposed to those the broken pool
        then terminates (SIGTERM) or that still run; None when no such worker can be told apart."""
        ended = set(multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0))
        deadline, pids = time.monotonic() + 1.0, set()
        for p in processes:
            if p.sentinel not in ended:
                continue
            code = p.exitcode
            while code is None and time.monotonic() < deadline:  # being reaped by the pool's thread
                time.sleep(0.01)
                code = p.exitcode
            if code is not None and code != -signal.SIGTERM:
                pids.add(p.pid)
        if not pids:
            return None
        return {self._slots[2 * r + 1] for r in range(self.size) if self._slots[2 * r] in pids}

    def __enter__(self) -> LocalExecutor:  # noqa: PYI034 - typing.Self needs Python 3.11
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def run(self, tasks: Iterable[SegmentTask], skip: Skip | None = None) -> Iterator[Outcome]:
        pending = deque(tasks)
        tries: dict[str, int] = {}
        inflight: dict[Future, tuple[int, SegmentTask]] = {}
        runs = 0
        while pending or inflight:
            while pending and len(inflight) < self.size:
                task = pending.popleft()
                if skip is not None and skip(task):
                    continue
                tries[task.key] = tries.get(task.key, 0) + 1
                runs += 1
                inflight[self.submit(_run, task, runs)] = (runs, task)
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                run, task = inflight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    inflight[future] = (run, task)  # handled with the others below
                except Exception as exc:  # noqa: BLE001 - reported as this segment's error
                    yield failed(task, exc, tries[task.key])
                else:
                    yield Outcome(task, result, attempts=tries[task.key])
            if broken:  # a worker died: every segment in flight was lost with the pool
                lost = list(inflight.values())
                inflight.clear()
                died = self._died(self._processes())
                self._stop()
                self.restarts += 1
                self._start()
                for run, task in reversed(lost):
                    if died is not None and run not in died:
                        tries[task.key] -= 1  # stopped with the pool, not the cause: no attempt used
                    if tries[task.key] >= self.attempts:
                        yield Outcome(task, error=f"worker died {tries[task.key]} times on this segment",
                                      attempts=tries[task.key])
                    else:
                        pending.appendleft(task)
