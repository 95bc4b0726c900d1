"""Stopping a run: Ctrl-C during the model's warm-up waits for the model call (no worker outlives the run: one
inside ONNX Runtime when the interpreter exited aborted the process), and SIGTERM ends stylize-video like Ctrl-C
(the playable partial kept, ``terminated``, exit 143: ``test_cli.py``), also before the first frame."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import torch
from stylize_video.errors import WORKER_PREFIX
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.io.sink import FileSink
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.job import JobOptions, stylize
from stylize_video.pipeline.synth import make_test_clip


class CtrlCInWarmUp(Backend):
    """Identity whose first call (the warm-up) gets a Ctrl-C (SIGINT to this process) and then lasts ``first_s``
    more, like a model's first run; counts finished calls."""

    name, precision, scale = "ctrl-c-in-warm-up", "fp32", 1

    def __init__(self, first_s: float) -> None:
        self.device = torch.device("cpu")
        self.first_s = first_s
        self.finished = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.finished:
            os.kill(os.getpid(), signal.SIGINT)  # handled by the main thread, while this call goes on
            time.sleep(self.first_s)
        self.finished += 1
        return x.clone()


def test_ctrl_c_during_the_warm_up_waits_for_the_model_call(tmp_path):
    src = make_test_clip(tmp_path / "in.mp4", frames=5, audio=False)
    out = tmp_path / "out.mkv"
    backend = CtrlCInWarmUp(first_s=0.5)
    source = FileSource(src)
    try:
        stats = stylize(source, FileSink(out), backend, JobOptions(progress=False))
    finally:
        source.close()
    # Before: KeyboardInterrupt left run() at once, the warm-up still inside the model.
    assert stats.interrupted and stats.stop_signal == "SIGINT" and stats.output is None and stats.frames == 0
    assert backend.finished == 1  # the call in progress ended before run() returned; no frame was started
    assert [t.name for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # nothing written, no temporary file


def test_sigterm_before_the_first_frame_is_terminated_143(tmp_path):
    """SIGTERM while the model loads and during its warm-up: one line each, 143, no temporary file left."""
    src = make_test_clip(tmp_path / "in.mp4", frames=5, audio=False)
    model = tmp_path / "m.onnx"  # never read: load_backend is replaced
    model.write_bytes(b"")
    code = f"""
import os, signal, sys, time, torch
from stylize_video.pipeline import cli
from stylize_video.pipeline.backends import base

class Slow(base.Backend):  # SIGTERM during its first call (the warm-up)
    name, precision, scale, device = "slow", "fp32", 1, torch.device("cpu")
    def __call__(self, x):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        return x

def load_backend(*args, **kwargs):
    if stage == "loading":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # (the handler raises here)
    return Slow()

import stylize_video.pipeline.backends as backends
backends.load_backend = load_backend
for stage in ("loading", "warm-up"):
    print(cli.main([{str(src)!r}, {str(tmp_path / "out.mp4")!r}, "--onnx", {str(model)!r}]))
    sys.stderr.flush()
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.split() == ["143", "143"], proc.stderr
    assert [line for line in proc.stderr.splitlines() if "terminated" in line] == [
        "stylize-video: terminated",
        "stylize-video: terminated; partial output kept: nothing (no frame was finished)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "m.onnx"]
