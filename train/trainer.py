"""The training loop shared by style transfer and super-resolution.

A ``Task`` supplies the network, the per-sample transform, the loss terms and sample images;
this module owns the rest: device/AMP, Adam, the deterministic data stream, progress bar,
JSON-lines log, periodic checkpoints with everything needed to resume exactly, and the final model.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from stylize_video.cliargs import progress_bar
from stylize_video.errors import StylizeError
from stylize_video.train.checkpoint import ModelInfo, load_state, save_checkpoint
from stylize_video.train.data import DataState, SampleStream, Transform
from stylize_video.train.images import save_image
from stylize_video.train.networks import TASK_OF_ARCH
from stylize_video.train.runtime import Runtime, pick_runtime, rng_state, set_rng_state, to_cpu
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm


@dataclass
class RunConfig:
    """Optimisation and bookkeeping of one run (the task's own settings live in the task)."""

    out: str
    iterations: int
    batch_size: int = 4
    lr: float = 1e-3
    seed: int = 42
    checkpoint_every: int = 2000
    sample_every: int = 1000
    log_every: int = 10
    workers: int = 4
    device: str = "auto"
    amp: bool = True


class Task(Protocol):
    arch: str
    scale: int

    def config(self) -> dict[str, Any]: ...
    def build(self, runtime: Runtime) -> nn.Module: ...
    def transform(self) -> Transform: ...
    def losses(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]: ...
    def sample_grid(self, model: nn.Module, images: list[torch.Tensor], runtime: Runtime) -> torch.Tensor: ...


@dataclass
class TrainResult:
    model_path: Path
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: int = 0


def _checkpoint_path(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step_{step:07d}.pth"


class _Log:
    """Averages the loss terms over each logging interval; writes them to tqdm and log.jsonl."""

    def __init__(self, path: Path, bar: tqdm) -> None:
        self.path, self.bar = path, bar
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.t0 = 0, time.perf_counter()
        self.history: list[dict[str, float]] = []

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
        self.count += 1

    def flush(self, step: int) -> None:
        if not self.count:
            return
        elapsed = time.perf_counter() - self.t0
        row = {"step": step, **{k: float(v) / self.count for k, v in self.sums.items()},
               "it_per_s": self.count / elapsed if elapsed > 0 else 0.0}
        self.history.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("step", "it_per_s")}, refresh=False)
        self.sums, self.count, self.t0 = {}, 0, time.perf_counter()


def train(task: Task, run: RunConfig, files: list[Path], resume: dict[str, Any] | None = None,
          sample_images: list[torch.Tensor] | None = None, *, quiet: bool = False,
          before_writing: Callable[[], None] | None = None) -> TrainResult:
    """Train ``task`` on ``files`` (readable images); resume from a checkpoint dict if given.

    ``quiet``: no progress bar (it is drawn only when stderr is a terminal anyway, ``cliargs.progress_bar``).
    ``before_writing``: called once every check has passed (the loss network's weights are loaded, the resumed
    state fits), just before ``run.out`` is created and written: the CLI's ``--overwrite`` clears an earlier run
    there only then, so a failed check loses nothing.
    """
    runtime = pick_runtime(run.device, run.amp)
    out = Path(run.out)
    torch.manual_seed(run.seed)
    model = task.build(runtime)  # seeded: initial weights (and random VGG weights) are reproducible
    start = 0
    if resume is not None:
        load_state(model, resume["state_dict"], name="resume checkpoint")
        start = int(resume["step"])
        if start >= run.iterations:
            raise StylizeError(f"the checkpoint is at step {start}: pass --iterations above it to train further")
        _check_data(resume.get("data", {}), run, len(files))
    if before_writing is not None:
        before_writing()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, no permission, ...
        raise StylizeError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=run.lr)
    scaler = runtime.grad_scaler()
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        set_rng_state(resume["rng"])

    info = ModelInfo(arch=task.arch, task=TASK_OF_ARCH[task.arch], scale=task.scale,
                     config={"task": task.config(), "run": asdict(run)})
    stream = SampleStream(files, task.transform(), run.seed, start * run.batch_size,
                          max(0, run.iterations - start) * run.batch_size)
    loader = DataLoader(stream, batch_size=run.batch_size, shuffle=False, num_workers=run.workers,
                        pin_memory=runtime.device.type == "cuda", persistent_workers=False)

    def save(step: int, path: Path) -> None:
        info.step = step
        data = DataState(run.seed, run.batch_size, len(files), step * run.batch_size)
        save_checkpoint(path, model, info, optimizer=to_cpu(optimizer.state_dict()), scaler=scaler.state_dict(),
                        rng=rng_state(), data=data.to_dict())

    def samples(step: int) -> None:
        if sample_images:
            model.eval()
            with torch.no_grad():
                grid = task.sample_grid(model, sample_images, runtime)
            model.train()
            save_image(grid, out / "samples" / f"step_{step:07d}.png")

    bar = progress_bar(quiet=quiet, total=run.iterations, initial=start, unit="it", desc=f"train {info.task}")
    log = _Log(out / "log.jsonl", bar)
    skipped, step = 0, start
    try:
        for step, (batch, bad) in enumerate(loader, start=start + 1):
            x = runtime.to_device(batch)
            with runtime.autocast():
                terms = task.losses(model, x)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            skipped += int(bad.sum())
            log.add(terms)
            bar.update(1)
            if step % run.log_every == 0 or step == run.iterations:
                log.flush(step)
            if run.checkpoint_every and step % run.checkpoint_every == 0:
                save(step, _checkpoint_path(out, step))
            if run.sample_every and step % run.sample_every == 0:
                samples(step)
    except StylizeError as exc:
        # From a DataLoader worker torch re-raises it with the worker's traceback in the message.
        raise StylizeError(str(exc).strip().splitlines()[-1].split("StylizeError: ", 1)[-1]) from None
    finally:
        bar.close()
    if not (run.checkpoint_every and step % run.checkpoint_every == 0):
        save(step, _checkpoint_path(out, step))  # the end state stays resumable (e.g. for more iterations)
    info.step = step
    model_path = save_checkpoint(out / "model.pth", model, info)
    samples(step)
    return TrainResult(model_path, step, log.history, skipped)


def _check_data(data: dict[str, Any], run: RunConfig, num_images: int) -> None:
    if data.get("batch_size", run.batch_size) != run.batch_size or data.get("seed", run.seed) != run.seed:
        raise StylizeError("--batch-size and --seed cannot change when resuming (the data order depends on them)")
    if data.get("num_images", num_images) != num_images:
        warnings.warn(f"the data folder now has {num_images} readable images, the checkpoint saw "
                      f"{data['num_images']}: the data order after resuming differs from the original run",
                      UserWarning, stacklevel=3)
