"""What the driver asks of an executor (local processes or Ray): run segment tasks, report each outcome.

An executor is a context manager (workers start on enter, stop on exit) whose ``run`` takes the tasks and
yields one ``Outcome`` per task as tasks finish, in any order; a task for which ``skip(task)`` is true when
its turn comes (its input already failed) is dropped without an outcome. A worker that dies (killed, out of memory, a
machine lost) costs the tasks it held one attempt each, and they run again, up to ``attempts`` times in all;
a ``StylizeError`` (bad input) is not retried. A ``ModelError`` (the model does not load on a worker) is an
outcome marked ``fatal``: the driver stops the batch, since every segment would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from stylize_video.pipeline.batch.worker import SegmentResult, SegmentTask

DEFAULT_ATTEMPTS = 3
Skip = Callable[[SegmentTask], bool]


@dataclass
class Outcome:
    """A finished task: ``result`` on success, else ``error`` (one line). ``attempts``: runs it took (>= 1);
    ``fatal``: the error is the model's (``worker.ModelError``), not this segment's."""

    task: SegmentTask
    result: SegmentResult | None = None
    error: str | None = None
    attempts: int = 1
    fatal: bool = False


class Executor(Protocol):
    name: str  # "local" | "ray"
    size: int  # workers
    restarts: int  # worker processes replaced after one died

    def __enter__(self) -> Executor: ...  # noqa: PYI034 - typing.Self needs Python 3.11

    def __exit__(self, *exc: object) -> None: ...

    def run(self, tasks: Iterable[SegmentTask], skip: Skip | None = None) -> Iterator[Outcome]: ...


def failed(task: SegmentTask, exc: BaseException, attempts: int) -> Outcome:
    """The outcome of a task whose worker raised ``exc`` (fatal for a ``ModelError``)."""
    from stylize_video.pipeline.batch.worker import ModelError

    return Outcome(task, error=error_line(exc), attempts=attempts, fatal=isinstance(exc, ModelError))


def error_line(exc: BaseException) -> str:
    """One line for a task's exception (StylizeError: its message; anything else: type and message)."""
    from stylize_video.errors import StylizeError

    if isinstance(exc, StylizeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
