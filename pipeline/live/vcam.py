"""Virtual-camera ``Sink`` (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS).

It receives the processor's output frames (Y'CbCr planes, like every sink) and converts them back to RGB
with our own matrices (``stylize_video.pipeline.processor.planes_to_rgb`` / ``stylize_video.pipeline.colour``, never swscale), on
``convert_device`` (the model's device in ``stylize-video``). It asks the processor for 4:4:4 planes, so
the only loss between the model and the camera is 8-bit rounding. No encoding: the lowest-latency output.
"""

from __future__ import annotations

import av
import numpy as np
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.colorinfo import ColourInfo, colour_info_of
from stylize_video.pipeline.io.planes import PlaneLayout, frame_to_buffer
from stylize_video.pipeline.io.sink import VideoSpec
from stylize_video.pipeline.processor import planes_to_rgb


def packed_to_rgb(buf: np.ndarray, layout: PlaneLayout, colour: ColourInfo,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Packed planes (``layout``) -> (H, W, 3) uint8 RGB, converted on ``device`` with ``colour``'s matrix/range."""
    planes = layout.torch_planes(torch.from_numpy(buf).to(device))
    with torch.no_grad():
        rgb = planes_to_rgb(planes, layout, colour)[0]
        return rgb.clamp_(0.0, 255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def frame_to_rgb(frame: av.VideoFrame, colour: ColourInfo | None = None) -> np.ndarray:
    """A decoded Y'CbCr frame -> (H, W, 3) uint8 RGB with its tagged (or guessed) colour description."""
    layout = PlaneLayout(frame.format.name, frame.width, frame.height)
    buf = np.empty(layout.nbytes, np.uint8)
    frame_to_buffer(frame, layout, buf)
    return packed_to_rgb(buf, layout, colour or colour_info_of(frame))


class VirtualCameraSink:
    """Sends RGB frames to a virtual camera; ``backend``: pyvirtualcam's (v4l2loopback, obs, unitycapture)."""

    encode_path = "vcam"
    packets_copied = 0

    def __init__(self, *, device: str | None = None, backend: str | None = None,
                 convert_device: str | torch.device = "cpu") -> None:
        try:
            import pyvirtualcam  # optional: the [live] extra of a checkout
        except ImportError:
            raise StylizeError("--vcam needs pyvirtualcam: pip install pyvirtualcam (in a checkout: "
                               "pip install -e '.[live]')") from None
        self._pyvirtualcam = pyvirtualcam
        self.device, self.backend, self.convert_device = device, backend, torch.device(convert_device)
        self.frames_written = 0
        self._camera = None

    def choose_pix_fmt(self, in_fmt: str, width: int, height: int) -> str:
        return "yuv444p"  # full-resolution chroma: RGB comes back as the model produced it, up to rounding

    def open(self, spec: VideoSpec, passthrough: list) -> None:
        self.layout = PlaneLayout(spec.pix_fmt, spec.width, spec.height)
        self.colour = spec.colour
        self._buf = np.empty(self.layout.nbytes, np.uint8)
        fps = float(spec.rate) if spec.rate else 30.0
        try:
            self._camera = self._pyvirtualcam.Camera(spec.width, spec.height, fps,
                                                     fmt=self._pyvirtualcam.PixelFormat.RGB,
                                                     device=self.device, backend=self.backend)
        except (RuntimeError, ValueError, KeyError) as exc:
            detail = " / ".join(str(exc).splitlines()) or type(exc).__name__
            raise StylizeError(f"no virtual camera available ({detail}); Linux: sudo modprobe v4l2loopback "
                               "exclusive_caps=1; Windows/macOS: install OBS and start its Virtual Camera once") \
                from None

    @property
    def camera_device(self) -> str | None:
        """The device actually used (e.g. ``/dev/video2``), once open."""
        return self._camera.device if self._camera is not None else None

    def write_frame(self, frame: av.VideoFrame) -> None:
        frame_to_buffer(frame, self.layout, self._buf)
        self._camera.send(packed_to_rgb(self._buf, self.layout, self.colour, self.convert_device))
        self.frames_written += 1

    def write_packet(self, packet: av.Packet) -> None:
        """A camera has no audio: packets are ignored."""

    def close(self, interrupted: bool = False) -> str | None:
        if self._camera is None:
            return None
        camera, self._camera = self._camera, None
        name = camera.device
        camera.close()
        return f"virtual camera {name}"

    def abort(self) -> None:
        if self._camera is not None:
            camera, self._camera = self._camera, None
            camera.close()
