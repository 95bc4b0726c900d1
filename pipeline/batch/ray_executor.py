"""``--ray ADDRESS``: segments on Ray actors, one per GPU of the cluster (or ``--workers N`` CPU actors).

``ADDRESS``: ``auto`` joins the cluster this machine belongs to (``ray start`` ran here), ``ray://host:10001``
connects through Ray Client, ``host:6379`` to a head node; ``local`` starts a local Ray instance with this
machine's CPUs and GPUs. Each actor asks for ``num_gpus=1`` (Ray then shows it its GPU as ``cuda:0``) or, on CPUs,
an equal share of the cluster's CPUs; it keeps one ``SegmentWorker`` (the model, loaded once per actor) and
takes one segment at a time. An actor whose process dies (killed, out of memory, node lost) is restarted by
Ray (``max_restarts``), loading the model again, and the segment it held is submitted again here, one
attempt used: Ray's own task retry (``max_task_retries``) is left off so each retry is counted in the summary.

Data: inputs, the work folder and the outputs are paths every node can open (shared storage), and the
model file too; only task descriptions and results travel through Ray. See pipeline/batch/README.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator

from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.executor import DEFAULT_ATTEMPTS, Outcome, Skip, failed
from stylize_video.pipeline.batch.ray_address import AUTO, INSTALL_HINT, LOCAL, check_address
from stylize_video.pipeline.batch.worker import SegmentResult, SegmentTask, SegmentWorker, WorkerConfig


def import_ray():  # -> module
    """``ray``, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise StylizeError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _auto_address() -> str | None:
    """The cluster ``ray.init(address="auto")`` would join (RAY_ADDRESS, else the last ``ray start`` on this
    machine), or None when there is none or Ray's (private) helper for it has moved: then ``ray.init`` says."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address("auto")
    except Exception:  # noqa: BLE001 - "no cluster" included: ray.init gives that message
        return None


class SegmentActor:
    """The Ray actor: a ``SegmentWorker`` on the device Ray gave this process."""

    def __init__(self, config: WorkerConfig) -> None:
        self.worker = SegmentWorker(config, "cuda:0" if config.device.startswith("cuda") else "cpu")

    def run(self, task: SegmentTask) -> SegmentResult:
        return self.worker.run(task)

    def ready(self) -> bool:
        """Answers once the actor is up (after a restart: the driver waits for this before giving it work)."""
        return True


class RayExecutor:
    """Segments on ``workers`` Ray actors (None: one per GPU of the cluster, or one on CPUs).

    ``connect()`` joins or starts Ray (also done on enter); entering makes the actors, leaving kills them;
    ``close()`` disconnects (and stops a local Ray this executor started). ``config`` may be set after
    construction, before entering (the device type can depend on the cluster: ``device_type``).
    """

    name = "ray"

    def __init__(self, config: WorkerConfig | None, address: str = LOCAL, workers: int | None = None,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.ray = import_ray()
        self.config, self.address, self.attempts = config, address, attempts
        self.size = workers or 0
        self.restarts = 0
        self._connected = self._started = False
        self._actors: list = []

    def connect(self) -> dict:
        """Join the cluster at ``address`` (or start a local Ray); returns its resources. An address where no
        Ray answers is refused within seconds (``ray_address``), not after Ray's many minutes of retries."""
        ray = self.ray
        if not self._connected and not ray.is_initialized():
            if self.address == AUTO:
                found = _auto_address()
                if found:
                    check_address(found, shown=f"auto ({found})")
            elif self.address != LOCAL:
                check_address(self.address)
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            try:
                if self.address == LOCAL:
                    ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
                else:
                    ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise StylizeError(f"--ray {self.address}: cannot start or reach Ray ({exc})") from None
            self._started = True
        self._connected = True
        return ray.cluster_resources()

    def device_type(self) -> str:
        """"cuda" when the cluster has GPUs, else "cpu" (what ``--device auto`` means on Ray)."""
        return "cuda" if self.connect().get("GPU", 0) >= 1 else "cpu"

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
        self._connected = self._started = False

    def __enter__(self) -> RayExecutor:  # noqa: PYI034 - typing.Self needs Python 3.11
        resources = self.connect()
        gpu = self.config.device.startswith("cuda")
        if gpu:
            have = int(resources.get("GPU", 0))
            if have == 0:
                raise StylizeError("--ray: the cluster has no GPU; pass --device cpu to run on CPUs")
            self.size = self.size or have
            if self.size > have:
                raise StylizeError(f"--workers {self.size}: the cluster has {have} GPU(s)")
            options = {"num_gpus": 1}
        else:
            have = int(resources.get("CPU", 1))
            self.size = self.size or 1
            if self.size > have:
                raise StylizeError(f"--workers {self.size}: the cluster has {have} CPU(s)")
            options = {"num_cpus": max(1, have // self.size)}
            self.config = dataclasses.replace(self.config, threads=options["num_cpus"])
        actor = self.ray.remote(SegmentActor).options(max_restarts=self.attempts, max_task_retries=0, **options)
        self._actors = [actor.remote(self.config) for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        for a in self._actors:
            self.ray.kill(a, no_restart=True)
        self._actors = []

    def run(self, tasks: Iterable[SegmentTask], skip: Skip | None = None) -> Iterator[Outcome]:
        ray = self.ray
        pending = deque(tasks)
        tries: dict[str, int] = {}
        idle = deque(range(len(self._actors)))
        inflight: dict = {}  # ObjectRef -> (actor slot, task)
        waking: dict = {}  # ObjectRef of ready() -> actor slot being restarted
        while pending or inflight:
            while pending and idle:
                task = pending.popleft()
                if skip is not None and skip(task):
                    continue
                slot = idle.popleft()
                tries[task.key] = tries.get(task.key, 0) + 1
                inflight[self._actors[slot].run.remote(task)] = (slot, task)
            if not inflight and not waking:  # every actor is dead
                for task in pending:
                    yield Outcome(task, error="no Ray worker left (all died)", attempts=tries.get(task.key, 0))
                return
            ready, _ = ray.wait([*inflight, *waking], num_returns=1)
            if ready[0] in waking:
                slot = waking.pop(ready[0])
                try:
                    ray.get(ready[0])
                    idle.append(slot)
                except ray.exceptions.RayActorError:
                    pass  # restarts used up: this actor is gone
                continue
            slot, task = inflight.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:  # its process (or node) died
                if not isinstance(exc, ray.exceptions.ActorDiedError):  # Ray restarts it: wait until it is up
                    self.restarts += 1
                    waking[self._actors[slot].ready.options(max_task_retries=-1).remote()] = slot
                if tries[task.key] >= self.attempts:
                    yield Outcome(task, error=f"worker died {tries[task.key]} times on this segment",
                                  attempts=tries[task.key])
                else:
                    pending.appendleft(task)
                continue
            except ray.exceptions.RayTaskError as exc:
                idle.append(slot)
                yield failed(task, getattr(exc, "cause", None) or exc, tries[task.key])
                continue
            idle.append(slot)
            yield Outcome(task, result, attempts=tries[task.key])
