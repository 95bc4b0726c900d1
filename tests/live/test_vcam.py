"""Virtual camera path through pyvirtualcam's backend registry, with an in-test backend that records frames."""

from __future__ import annotations

import sys
from fractions import Fraction
from typing import ClassVar

import av
import numpy as np
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.colorinfo import colour_info
from stylize_video.pipeline.io.sink import VideoSpec
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.live.vcam import VirtualCameraSink

pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam (extra [live]) is not installed")


class RecordingCamera:
    """Follows pyvirtualcam's Backend contract (keyword-only __init__, send/close/device/native_fourcc)."""

    instances: ClassVar[list[RecordingCamera]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.size, self.fps, self.fourcc = (width, height), fps, fourcc
        self._device = device or "/dev/video-test"
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingCamera.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int | None:
        return None


class MissingDevice(RecordingCamera):
    def __init__(self, **kw) -> None:
        raise RuntimeError("device /dev/video9 does not exist")


@pytest.fixture(autouse=True)
def _registered():
    pyvirtualcam.register_backend("stylize-test", RecordingCamera)
    pyvirtualcam.register_backend("stylize-missing", MissingDevice)
    RecordingCamera.instances.clear()
    yield
    pyvirtualcam.camera.BACKENDS.pop("stylize-test", None)
    pyvirtualcam.camera.BACKENDS.pop("stylize-missing", None)


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_vcam_receives_stylized_rgb(flat_clip, live, device):
    """Through the one frame path: the model's RGB comes back from 4:4:4 planes via stylize_video.pipeline.colour, up to rounding."""
    sink = VirtualCameraSink(backend="stylize-test", convert_device=device)
    stats = live.run(FileSource(flat_clip), sink, live.Negate())
    (cam,) = RecordingCamera.instances
    assert cam.closed and cam.size == (64, 48) and cam.fps == pytest.approx(25)
    assert cam.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert len(cam.frames) == stats.frames == 25 and stats.output == "virtual camera /dev/video-test"
    for sent, src in zip(cam.frames, live.rgb(flat_clip)):
        assert sent.dtype == np.uint8 and sent.size == 64 * 48 * 3
        err = np.abs(sent.reshape(48, 64, 3).astype(np.int16) - (255 - src.astype(np.int16)))
        assert err.max() <= 2  # no encode, no chroma subsampling: 8-bit rounding only


def test_vcam_with_a_stream_output_through_the_cli(flat_clip, tmp_path, capsys):
    """``stylize-video IN OUT --vcam``: one run feeds the file and the camera (a TeeSink)."""
    from stylize_video.pipeline.cli import main
    from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
    from stylize_video.train.networks import build_network

    ckpt = save_checkpoint(tmp_path / "tn.pth", build_network("transformer_net"), ModelInfo("transformer_net", "style", 1))
    out = tmp_path / "o.mkv"
    rc = main([str(flat_clip), str(out), "--checkpoint", str(ckpt), "--vcam", "--vcam-backend", "stylize-test",
               "--max-frames", "3", "--preset", "ultrafast"])
    assert rc == 0, capsys.readouterr().err
    (cam,) = RecordingCamera.instances
    assert len(cam.frames) == 3 and cam.closed
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"  # the file sink plans; the camera follows
        assert sum(1 for _ in c.decode(video=0)) == 3


def test_vcam_missing_device_is_one_clear_error():
    sink = VirtualCameraSink(backend="stylize-missing")
    spec = VideoSpec(8, 8, "yuv444p", Fraction(1, 25), Fraction(25), colour_info(1, 1, 1, 1, height=8, pix_fmt="yuv444p"))
    with pytest.raises(StylizeError, match="no virtual camera available.*modprobe v4l2loopback"):
        sink.open(spec, [])


def test_vcam_without_pyvirtualcam(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    with pytest.raises(StylizeError, match=r"^--vcam needs pyvirtualcam: pip install pyvirtualcam "):
        VirtualCameraSink()
