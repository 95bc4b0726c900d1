"""The frame path's GPU-facing fixes, shown on the CPU with fakes where CUDA/NVDEC would be (issue 12),
and the NaN/Inf model-output check (issue 11, item 8) end to end."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.torch import TorchBackend
from stylize_video.pipeline.io import source as source_mod
from stylize_video.pipeline.io.nvdec import wait_for_decoder
from stylize_video.pipeline.io.sink import EncoderOptions, EncodingSink, FileSink
from stylize_video.pipeline.io.source import FileSource, FileSourceOptions
from stylize_video.pipeline.job import JobOptions, stylize, stylize_file
from stylize_video.pipeline.synth import make_test_clip


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


# -- 1. NVDEC opens with torch's context, and any failure to open it decodes on the CPU ------------------------

def test_nvdec_shares_torchs_context_not_the_primary_one():
    from stylize_video.pipeline.io.nvdec import make_hwaccel

    hw = make_hwaccel(True, 1)
    # PyAV sets primary_ctx=1 by default for is_hw_owned; FFmpeg refuses both at once (EINVAL)
    assert hw.options == {"primary_ctx": "0", "current_ctx": "1"} and hw.is_hw_owned
    assert make_hwaccel(False, 0).options == {"primary_ctx": "0", "current_ctx": "1"}


def test_nvdec_open_failure_decodes_on_the_cpu(tmp_path, monkeypatch):
    """av.open raising ENOTSUP for the CUDA device (torch's context active first) must not end the run."""
    clip = make_test_clip(tmp_path / "c.mp4", frames=4, audio=False)
    calls = []
    real_open = FileSource._open

    def fake_open(self, decode_path, hwaccel):
        calls.append(decode_path)
        if hwaccel is not None:
            raise StylizeError(f"{self.path} is not a readable video (Operation not supported)")
        return real_open(self, decode_path, hwaccel)

    monkeypatch.setattr(source_mod, "nvdec_available", lambda: True)
    monkeypatch.setattr(source_mod, "use_torch_context", lambda index: calls.append(f"context {index}"))
    monkeypatch.setattr(source_mod, "make_hwaccel", lambda keep, index: object())
    monkeypatch.setattr(FileSource, "_open", fake_open)
    with pytest.warns(UserWarning, match=r"NVDEC could not be opened .*Operation not supported.*decoding on the CPU"):
        src = FileSource(clip, FileSourceOptions(hwdec=True, hwdec_device=1, copy_audio=False))
    try:
        assert calls == ["context 1", "nvdec-dlpack", "cpu"]  # the context is current before FFmpeg looks for it
        assert src.info.decode_path == "cpu" and src.info.width == 64
    finally:
        src.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU with NVDEC")
def test_nvdec_zero_copy_end_to_end(tmp_path):
    """torch's CUDA context exists before the source opens (the model loads first), as in stylize-video."""
    if not source_mod.nvdec_available():
        pytest.skip("this PyAV's FFmpeg has no CUDA hwaccel")
    clip = make_test_clip(tmp_path / "c.mp4", width=128, height=96, frames=6, audio=False)
    backend = TorchBackend(torch.nn.Identity(), "cuda", "fp32", scale=1)
    torch.zeros(1, device="cuda")
    out = tmp_path / "o.mp4"
    stats = stylize_file(clip, out, backend, JobOptions(source=FileSourceOptions(hwdec=True), progress=False,
                                                        encoder=EncoderOptions(preset="ultrafast")))
    assert stats.decode_path == "nvdec-dlpack" and stats.frames == 6 == _frames(out)
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            ya, yb = fa.to_ndarray()[:96].astype(float), fb.to_ndarray()[:96].astype(float)
            assert 10 * np.log10(255**2 / max(np.mean((ya - yb) ** 2), 1e-9)) > 40


# -- 2. per NVDEC frame: a stream wait, never a device-wide synchronize -----------------------------------------

def test_decoder_wait_is_a_stream_wait(monkeypatch):
    waits = []

    class Stream:
        def wait_stream(self, other):
            waits.append(other)

    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: "legacy-default")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: pytest.fail("device-wide synchronize per frame"))
    wait_for_decoder(Stream(), torch.device("cuda", 0))
    wait_for_decoder(None, torch.device("cpu"))  # CPU processors: nothing to order
    assert waits == ["legacy-default"]  # FFmpeg's CUDA device has stream NULL: the legacy default stream


# -- 3. x264: frame threads for files, slice threads for live outputs ------------------------------------------

class _LiveLikeSink(EncodingSink):
    """An ``EncodingSink`` like the stream outputs (default threading), writing a file we can read back."""

    def __init__(self, path: Path) -> None:
        super().__init__(EncoderOptions(preset="ultrafast"))
        self.path = path

    def _open_container(self):
        return av.open(str(self.path), "w", format="mp4")


@pytest.mark.parametrize("kind", ["file", "live"])
def test_x264_threading_per_output_kind(tmp_path, kind):
    # (x264 runs a single thread below ~200 lines, whatever it is asked: 480 lines show both modes)
    clip = make_test_clip(tmp_path / "c.mp4", width=640, height=480, frames=2, audio=False)
    out = tmp_path / f"{kind}.mp4"
    sink = FileSink(out, EncoderOptions(preset="ultrafast")) if kind == "file" else _LiveLikeSink(out)
    src = FileSource(clip, FileSourceOptions(copy_audio=False))
    try:
        stylize(src, sink, TorchBackend(torch.nn.Identity(), "cpu", "fp32", scale=1), JobOptions(progress=False))
    finally:
        src.close()
    settings = out.read_bytes()  # x264 writes its settings string into an SEI of the stream
    assert (b"sliced_threads=0" if kind == "file" else b"sliced_threads=1") in settings


# -- 7. warm-up and frames on one thread (torch.compile's CUDA graphs are bound to it) -------------------------

class _ThreadRecorder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.append(threading.get_ident())
        return x


def test_warmup_runs_on_the_thread_that_runs_the_frames(tmp_path):
    clip = make_test_clip(tmp_path / "c.mp4", frames=5, audio=False)
    net = _ThreadRecorder()
    stats = stylize_file(clip, tmp_path / "o.mp4", TorchBackend(net, "cpu", "fp32", scale=1),
                         JobOptions(progress=False, encoder=EncoderOptions(preset="ultrafast")))
    assert stats.frames == 5 and len(net.threads) == 6  # one warm-up call + five frames
    assert len(set(net.threads)) == 1 and net.threads[0] != threading.main_thread().ident


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.compile + CUDA graphs)")
def test_compiled_cuda_graphs_from_a_worker_thread(checkpoints):
    """pytorch#123177: cudagraph trees assert when the frames run on another thread than the warm-up."""
    from stylize_video.pipeline.backends import load_backend

    backend = load_backend(checkpoints["style"], device="cuda", precision="fp16", compile="reduce-overhead")
    x = torch.rand(1, 3, 64, 96, device="cuda") * 255
    outs, errors = [], []

    def work():
        try:
            for _ in range(4):  # warm-up, record, replay, replay
                outs.append(backend(x).clone())
            torch.cuda.synchronize()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors and len(outs) == 4
    for y in outs[1:]:
        torch.testing.assert_close(y, outs[0], atol=0.5, rtol=0.01)


# -- issue 11.8: NaN/Inf model output stops the run, naming the frame; the partial output is kept ----------------

def _clip_with_white_frame(path: Path, frames: int, white: int) -> Path:
    """Dark frames, except frame ``white`` which is white (the trigger of the test model below)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            rgb = np.full((48, 64, 3), 250 if i == white else 40, np.uint8)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


class _NanOnBright(torch.nn.Module):
    """Identity, except NaN everywhere for bright frames (log of a negative number, like an FP16 overflow)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.0 * torch.log(200.0 - x.mean())


def test_nan_output_stops_at_that_frame_and_keeps_the_rest(tmp_path, capsys):
    from stylize_video.pipeline.cli import main

    clip = _clip_with_white_frame(tmp_path / "in.mp4", frames=8, white=5)
    model = tmp_path / "nan.onnx"
    torch.onnx.export(_NanOnBright(), torch.zeros(1, 3, 48, 64), str(model), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {2: "h", 3: "w"}}, dynamo=False)
    out = tmp_path / "out.mp4"
    rc = main([str(clip), str(out), "--onnx", str(model), "--device", "cpu", "--preset", "ultrafast", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    partial = tmp_path / "out.partial.mp4"
    assert rc == 1 and err == [(f"stylize-video: error: model output has NaN/Inf values at frame 5 (t=0.200 s): "
                               f"check the model (it does this in FP32 too); --precision fp32 is already in use; "
                               f"partial output kept: {partial}")]
    assert not out.exists() and _frames(partial) == 5  # frames 0..4, nothing of frame 5 or later


def test_nan_message_suggests_fp32_for_fp16_runs():
    from stylize_video.pipeline.nonfinite import NonFiniteOutput

    msg = NonFiniteOutput(12, None, "fp16").describe("o.partial.mp4")
    assert msg == ("model output has NaN/Inf values at frame 12: an FP16 overflow in the network; run with "
                   "--precision fp32; partial output kept: o.partial.mp4")


def test_flag_ring_outlasts_the_frames_in_flight():
    from stylize_video.pipeline.colorinfo import ColourInfo
    from stylize_video.pipeline.io.planes import PlaneLayout
    from stylize_video.pipeline.processor import FrameProcessor, ProcessorConfig

    layout, colour = PlaneLayout("yuv420p", 32, 24), ColourInfo("bt709", False, 1, 1, 1)
    proc = FrameProcessor(TorchBackend(torch.nn.Identity(), "cpu", "fp32", scale=1),
                          ProcessorConfig(layout, layout, colour, colour))
    assert proc.flags is None  # CPU: the count is known when the call returns
    from stylize_video.pipeline.nonfinite import NonFiniteFlags

    proc.flags = NonFiniteFlags(4, pin=False)  # as on CUDA
    proc.reserve_flag_slots(11)
    ring = proc.flags
    assert ring.size > 11 and len({id(ring.slot()) for _ in range(ring.size)}) == ring.size
