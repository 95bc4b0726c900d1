"""Where live frames go: an encoded stream (network / stdout / file) or a virtual camera.

Both take (H, W, 3) uint8 RGB frames with their media time in seconds and open lazily on the first
frame, since the output size is only known once the model has run.
"""

from __future__ import annotations

import os
from typing import Protocol

import av
import numpy as np

from pipeline.live.encoding import TIME_BASE, LiveEncoderConfig, add_live_stream
from pipeline.live.frames import rgb_to_frame
from pipeline.live.outputs import OutputSpec
from pipeline.live.tcp import SocketWriter, open_tcp_writer
from train.errors import StylizeError


class FrameSink(Protocol):
    """Receives stylized frames in presentation order."""

    def write(self, rgb: np.ndarray, time_s: float) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None:
        """Close after a failure: a file output must not be left looking complete."""


class StreamSink:
    """Encodes with a low-latency preset and muxes to a network URL, stdout or a file.

    Timestamps come from the source (milliseconds), so dropped frames leave gaps rather than
    speeding the stream up; they are forced strictly increasing for the muxer.
    """

    def __init__(self, spec: OutputSpec, *, fps: float, encoder: LiveEncoderConfig | None = None,
                 prefer_gpu: bool = False, open_timeout: float = 30.0) -> None:
        self.spec = spec
        self.fps = fps
        self.encoder = encoder or LiveEncoderConfig()
        self.prefer_gpu = prefer_gpu
        self.open_timeout = open_timeout
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._last_pts = -1
        self._failed = False
        self._socket: SocketWriter | None = None

    def _open(self, width: int, height: int) -> None:
        target: str | SocketWriter = self.spec.partial if self.spec.kind == "file" else self.spec.target
        if self.spec.scheme == "tcp":
            target = self._socket = open_tcp_writer(self.spec.target, timeout=self.open_timeout)
        try:
            self._container = av.open(target, "w", format=self.spec.format, options=self.spec.options or None,
                                      timeout=(self.open_timeout, self.open_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            raise StylizeError(f"cannot open output {self.spec.target}: {getattr(exc, 'strerror', None) or exc}") \
                from None
        self._stream = add_live_stream(self._container, width=width, height=height, fps=self.fps,
                                       config=self.encoder, prefer_gpu=self.prefer_gpu)

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        # 4:2:0 needs even sizes: an odd last row/column is cropped rather than failing a live run.
        rgb = rgb[: rgb.shape[0] & ~1, : rgb.shape[1] & ~1]
        if self._container is None:
            self._open(rgb.shape[1], rgb.shape[0])
        assert self._stream is not None and self._container is not None
        frame = rgb_to_frame(rgb, self.encoder.pix_fmt)
        pts = max(round(time_s / TIME_BASE), self._last_pts + 1)
        frame.pts, frame.time_base, self._last_pts = pts, TIME_BASE, pts
        self._mux(self._stream.encode(frame))
        self.frames_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)  # type: ignore[union-attr]
        except (av.error.FFmpegError, OSError) as exc:
            self._failed = True
            raise StylizeError(f"output {self.spec.target} failed: {getattr(exc, 'strerror', None) or exc}") \
                from None

    def abort(self) -> None:
        self._failed = True
        self.close()

    def close(self) -> None:
        """Flush the encoder and close; a file output is renamed to its final name only if all went well."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if not self._failed and self._stream is not None:
                container.mux(self._stream.encode(None))
        except (av.error.FFmpegError, OSError):
            self._failed = True
        finally:
            container.close()
            if self._socket is not None:
                self._socket.close()
        if self.spec.kind == "file":
            if self._failed:
                os.unlink(self.spec.partial)
            else:
                os.replace(self.spec.partial, self.spec.target)


class VirtualCameraSink:
    """Sends RGB frames to a virtual camera through pyvirtualcam (v4l2loopback on Linux, OBS on Windows/macOS).

    No encoding: latency is one conversion to the backend's native format (I420/NV12/UYVY).
    """

    def __init__(self, *, fps: float, device: str | None = None, backend: str | None = None) -> None:
        try:
            import pyvirtualcam  # optional extra [live]
        except ImportError:
            raise StylizeError("--vcam needs pyvirtualcam: pip install 'stylize-video[live]'") from None
        self._pyvirtualcam = pyvirtualcam
        self.fps, self.device, self.backend = fps, device, backend
        self.frames_written = 0
        self._camera: pyvirtualcam.Camera | None = None

    def _open(self, width: int, height: int) -> None:
        try:
            self._camera = self._pyvirtualcam.Camera(width, height, self.fps, fmt=self._pyvirtualcam.PixelFormat.RGB,
                                                     device=self.device, backend=self.backend)
        except (RuntimeError, ValueError, KeyError) as exc:
            detail = " / ".join(str(exc).splitlines()) or type(exc).__name__
            raise StylizeError(f"no virtual camera available ({detail}); Linux: sudo modprobe v4l2loopback "
                               "exclusive_caps=1; Windows/macOS: install OBS and start its Virtual Camera once") \
                from None

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        if self._camera is None:
            self._open(rgb.shape[1], rgb.shape[0])
        assert self._camera is not None
        self._camera.send(np.ascontiguousarray(rgb))
        self.frames_written += 1

    @property
    def camera_device(self) -> str | None:
        """The device actually used (e.g. ``/dev/video2``), once open."""
        return self._camera.device if self._camera is not None else None

    def close(self) -> None:
        if self._camera is not None:
            camera, self._camera = self._camera, None
            camera.close()

    abort = close


class TeeSink:
    """Writes every frame to several sinks (e.g. a UDP stream and a virtual camera)."""

    def __init__(self, sinks: list[FrameSink]) -> None:
        self.sinks = sinks

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        for sink in self.sinks:
            sink.write(rgb, time_s)

    def abort(self) -> None:
        self._close_all(abort=True)

    def close(self) -> None:
        self._close_all(abort=False)

    def _close_all(self, *, abort: bool) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.abort() if abort else sink.close()
            except Exception as exc:  # noqa: BLE001 - close the others before reporting
                errors.append(exc)
        if errors:
            raise errors[0]
