"""Virtual camera path through pyvirtualcam's backend registry, with an in-test backend that records frames."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from pipeline.live.inputs import parse_input
from pipeline.live.loop import LiveConfig, run_live
from pipeline.live.sinks import VirtualCameraSink
from pipeline.live.source import FrameReader
from pipeline.stylizer import Stylizer
from train.errors import StylizeError

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


def test_vcam_receives_stylized_rgb(flat_clip, negate):
    reader = FrameReader(parse_input(str(flat_clip)))
    source = []
    sink = VirtualCameraSink(fps=reader.fps, backend="stylize-test")
    with Stylizer(negate()) as stylizer:
        def process(rgb: np.ndarray) -> np.ndarray:
            source.append(rgb)
            return stylizer(rgb)
        report = run_live(reader, process, sink, LiveConfig(realtime=False))
    (cam,) = RecordingCamera.instances
    assert cam.closed and cam.size == (64, 48) and cam.fps == pytest.approx(25)
    assert cam.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert len(cam.frames) == report.frames_out == 25
    for sent, src in zip(cam.frames, source):
        assert sent.dtype == np.uint8 and sent.size == 64 * 48 * 3
        np.testing.assert_array_equal(sent.reshape(48, 64, 3), 255 - src)  # no encode: exact


def test_vcam_missing_device_is_one_clear_error():
    sink = VirtualCameraSink(fps=30, backend="stylize-missing")
    with pytest.raises(StylizeError, match="no virtual camera available.*modprobe v4l2loopback"):
        sink.write(np.zeros((8, 8, 3), np.uint8), 0.0)
