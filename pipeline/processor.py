"""The processing stage: packed Y'CbCr planes -> RGB -> model -> RGB -> packed Y'CbCr, on one device.

Pure conversion functions first (the reference, usable by the live mode on its own), then
``FrameProcessor``, which owns the device buffers, the fused conversions
(``stylize_video.pipeline.colour_fused``: Numba kernels on the CPU, compiled torch on CUDA) and, on
CUDA, its own stream: upload (non-blocking, from pinned memory), convert, infer, convert back and
download are all queued on that stream and the caller gets an event to wait on, so the decode and
encode threads keep running meanwhile. Each frame also gets a NaN/Inf flag
(``stylize_video.pipeline.nonfinite``), read by the caller once the frame is done.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.pipeline.colorinfo import ColourInfo
from stylize_video.pipeline.colour import downsample_chroma, quantise, rgb_to_yuv, upsample_chroma, yuv_to_rgb
from stylize_video.pipeline.colour_fused import FusedConverter
from stylize_video.pipeline.io.planes import PlaneLayout
from stylize_video.pipeline.model_failure import ModelFailure
from stylize_video.pipeline.nonfinite import NonFiniteFlags
from stylize_video.train.histogram import match_histogram


def _to_float(p: torch.Tensor, layout: PlaneLayout) -> torch.Tensor:
    """uint8 / int16-holding-uint16 plane -> float32 code values at the layout's bit depth."""
    if p.dtype == torch.uint8:
        return p.float()
    x = (p.to(torch.int32) & 0xFFFF).float()
    return x / (1 << (16 - layout.bit_depth)) if layout.spec[4] else x  # P010 keeps samples in the MSBs


def planes_to_rgb(planes: list[torch.Tensor], layout: PlaneLayout, colour: ColourInfo,
                  siting: str = "left") -> torch.Tensor:
    """Decoded planes -> RGB 0..255 float32 (not clamped).

    Shapes: [(H, W), (Hc, Wc), (Hc, Wc)] or NV12-style [(H, W), (Hc, 2 Wc)] -> (1, 3, H, W).
    """
    y = _to_float(planes[0], layout)
    if layout.semi_planar:
        uv = _to_float(planes[1], layout)
        # (Hc, 2 Wc) from our packed buffer; DLPack exports of CUDA frames may be (Hc, Wc, 2).
        u, v = (uv[..., 0], uv[..., 1]) if uv.dim() == 3 else (uv[:, 0::2], uv[:, 1::2])
    else:
        u, v = _to_float(planes[1], layout), _to_float(planes[2], layout)
    sx, sy = layout.log2_chroma
    uv = upsample_chroma(torch.stack([u, v]), layout.height, layout.width, sx, sy, siting)
    rgb = yuv_to_rgb(y, uv[0], uv[1], matrix=colour.matrix, full_range=colour.full_range, bit_depth=layout.bit_depth)
    return rgb.unsqueeze(0)


def rgb_to_packed(rgb: torch.Tensor, layout: PlaneLayout, colour: ColourInfo, siting: str = "left") -> torch.Tensor:
    """RGB 0..255 (clamped here) -> the layout's packed plane buffer.

    Shapes: (1, 3, H, W) float -> (layout.nbytes,) uint8, same device.
    """
    rgb = rgb[0].float().clamp(0.0, 255.0)
    y, u, v = rgb_to_yuv(rgb, matrix=colour.matrix, full_range=colour.full_range, bit_depth=layout.bit_depth)
    sx, sy = layout.log2_chroma
    uv = downsample_chroma(torch.stack([u, v]), sx, sy, siting)
    y, uv = quantise(y, layout.bit_depth), quantise(uv, layout.bit_depth)
    if layout.spec[4]:
        y, uv = y * (1 << (16 - layout.bit_depth)), uv * (1 << (16 - layout.bit_depth))
    planes = [y, torch.stack([uv[0], uv[1]], dim=-1).flatten(-2)] if layout.semi_planar else [y, uv[0], uv[1]]
    if layout.bytes_per_sample == 1:
        return torch.cat([p.to(torch.uint8).flatten() for p in planes])
    # Values <= 65535 fit int32; the low 16 bits reinterpreted as int16 are the uint16 samples.
    return torch.cat([p.to(torch.int32).to(torch.int16).flatten().view(torch.uint8) for p in planes])


def rotate_rgb(rgb: torch.Tensor, degrees_ccw: int) -> torch.Tensor:
    """Rotate by a multiple of 90 degrees counter-clockwise (display-matrix convention). (N,3,H,W) -> rotated."""
    k = (degrees_ccw // 90) % 4
    return torch.rot90(rgb, k, dims=(-2, -1)) if k else rgb


@dataclass
class GpuWork:
    """One frame's work queued on a CUDA stream, bracketed by timing events."""

    start: torch.cuda.Event
    end: torch.cuda.Event

    def synchronize(self) -> None:
        self.end.synchronize()

    def elapsed_s(self) -> float:
        """Device time from upload start to download end (call after ``synchronize``)."""
        return self.start.elapsed_time(self.end) / 1000.0


def _begin(stream: torch.cuda.Stream) -> torch.cuda.Event:
    event = torch.cuda.Event(enable_timing=True)
    event.record(stream)
    return event


def _end(stream: torch.cuda.Stream, start: torch.cuda.Event) -> GpuWork:
    end = torch.cuda.Event(enable_timing=True)
    end.record(stream)
    return GpuWork(start, end)


@dataclass(frozen=True)
class ProcessorConfig:
    in_layout: PlaneLayout
    out_layout: PlaneLayout
    colour_in: ColourInfo
    colour_out: ColourInfo
    rotate_ccw: int = 0  # applied before the model (--apply-rotation)
    siting: str = "left"
    match_histogram: bool = False  # SR post-process: output histogram matched to the model input, per channel


class FrameProcessor:
    """Backend plus colour conversion on the backend's device, with buffers allocated once.

    After each call, ``last_nonfinite`` holds that frame's NaN/Inf flag: an int count on the CPU, a
    pinned 0-dim slot on CUDA that is valid once the returned ``GpuWork`` has completed.
    """

    def __init__(self, backend: Backend, config: ProcessorConfig, compile_colour: bool | None = None) -> None:
        self.backend = backend
        self.config = config
        self.device = backend.device
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        # Device-side staging for the packed input; reused every frame.
        self._dev_in = torch.empty(config.in_layout.nbytes, dtype=torch.uint8, device=self.device)
        self.colour = FusedConverter(config.in_layout, config.out_layout, config.colour_in, config.colour_out,
                                     config.siting, self.device, compile=compile_colour)
        self.flags = NonFiniteFlags(16, pin=cuda) if cuda else None
        self.last_nonfinite: int | torch.Tensor | None = None

    def reserve_flag_slots(self, in_flight: int) -> None:
        """Size the NaN/Inf flag ring for ``in_flight`` frames between this call and the reader."""
        if self.flags is not None and self.flags.size <= in_flight:
            self.flags = NonFiniteFlags(in_flight + 1, pin=self.flags.pin)

    def convert_in(self, planes: list[torch.Tensor]) -> torch.Tensor:
        """Device planes -> (1, 3, H', W') RGB ready for the model (rotated if asked)."""
        c = self.config
        return rotate_rgb(self.colour.to_rgb(planes), c.rotate_ccw)

    def convert_in_any_size(self, planes: list[torch.Tensor]) -> torch.Tensor:
        """``convert_in`` for planes whose size may differ from the input layout's (NVDEC frames after a
        mid-stream size change): converted at their own size, then scaled to the layout's on the device,
        as the software path scales such frames with swscale. Same output shape as ``convert_in``."""
        lay = self.config.in_layout
        h, w = planes[0].shape[:2]
        if (h, w) == (lay.height, lay.width):
            return self.convert_in(planes)
        c = self.config
        rgb = self.colour.to_rgb(planes, PlaneLayout(lay.pix_fmt, w, h))
        rgb = F.interpolate(rgb, size=(lay.height, lay.width), mode="bilinear", align_corners=False, antialias=True)
        return rotate_rgb(rgb, c.rotate_ccw)

    def run_planes(self, planes: list[torch.Tensor], out: torch.Tensor) -> None:
        """Device planes -> packed output planes written into ``out`` (device buffer, or the pinned/host
        buffer: queued on the current stream). Sets ``last_nonfinite``. A runtime's own exception from the model
        call is raised as ``ModelFailure`` (one line; the caller adds which frame)."""
        c = self.config
        rgb = self.convert_in_any_size(planes)
        try:
            y = self.backend(rgb)
        except StylizeError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT/torch/TensorRT raise their own types: one line, not a traceback
            raise ModelFailure(self.backend, exc) from None
        expect = (c.out_layout.height, c.out_layout.width)
        if tuple(y.shape[-2:]) != expect:
            raise RuntimeError(f"model output {tuple(y.shape[-2:])} does not match the expected frame size {expect}")
        if c.match_histogram:  # in RGB, before the clamp and YUV conversion of the packing
            y = match_histogram(y, rgb)
        flag = self.colour.to_packed(y, out)
        if isinstance(flag, torch.Tensor) and self.flags is not None:
            slot = self.flags.slot()
            slot.copy_(flag, non_blocking=True)  # read by the caller after the frame's event: no sync here
            flag = slot
        self.last_nonfinite = flag

    @torch.no_grad()
    def __call__(self, host_in: torch.Tensor, host_out: torch.Tensor) -> GpuWork | None:
        """Upload ``host_in`` (packed input), process, download into ``host_out`` (packed output).

        On CUDA everything is queued on this processor's stream and the returned ``GpuWork`` ends with
        the download (also the moment ``host_in`` may be reused); on CPU it is all done on return.
        """
        if self.stream is None:
            self.run_planes(self.config.in_layout.torch_planes(host_in), host_out)
            return None
        with torch.cuda.stream(self.stream):
            start = _begin(self.stream)
            self._dev_in.copy_(host_in, non_blocking=True)
            self.run_planes(self.config.in_layout.torch_planes(self._dev_in), host_out)
            return _end(self.stream, start)

    def warmup(self, calls: int | None = None) -> float:
        """Run mid-grey frames through; seconds taken. Call it on the thread that will run the frames.

        torch.compile, Numba, TensorRT graph capture happen here. ``calls`` defaults to 3 on CUDA: with
        CUDA graphs (torch.compile's cudagraph trees) the first call runs eagerly, the second records and
        the third replays, so the first real frame is already a replay; 1 on the CPU.
        """
        import time

        calls = calls if calls is not None else (3 if self.device.type == "cuda" else 1)
        t0 = time.perf_counter()
        c = self.config
        pin = self.device.type == "cuda"
        host_in = torch.empty(c.in_layout.nbytes, dtype=torch.uint8, pin_memory=pin)
        host_in.fill_(1 << 7 if c.in_layout.bytes_per_sample == 1 else 0)
        host_out = torch.empty(c.out_layout.nbytes, dtype=torch.uint8, pin_memory=pin)
        for _ in range(calls):
            event = self(host_in, host_out)
            if event is not None:
                event.synchronize()
        return time.perf_counter() - t0

    @torch.no_grad()
    def process_device_planes(self, planes: list[torch.Tensor], host_out: torch.Tensor) -> GpuWork | None:
        """Same as ``__call__`` for planes already on the device (NVDEC frames imported via DLPack).

        The planes were written on FFmpeg's CUDA stream: the caller makes this processor's stream wait
        for that work first (``stylize_video.pipeline.nvdec_sync``), never the whole device."""
        if self.stream is None:
            self.run_planes(planes, host_out)
            return None
        with torch.cuda.stream(self.stream):
            start = _begin(self.stream)
            self.run_planes(planes, host_out)
            return _end(self.stream, start)
