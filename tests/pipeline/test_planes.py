"""stylize_video.pipeline.io.planes: packed host buffers <-> av.VideoFrame, for odd sizes and deep formats."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from stylize_video.pipeline.io.planes import PlaneLayout, buffer_to_frame, frame_to_buffer

# FFmpeg's semi-planar formats (nv12, p010le) exist only at even sizes, so they get no odd case.
_CASES = [(f, w, h) for f in ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "nv12", "p010le")
          for w, h in ((64, 48), (63, 47)) if not (f in ("nv12", "p010le") and w % 2)]


@pytest.mark.parametrize(("pix_fmt", "w", "h"), _CASES)
def test_round_trip(pix_fmt, w, h):
    layout = PlaneLayout(pix_fmt, w, h)
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, layout.nbytes, dtype=np.uint8)
    frame = buffer_to_frame(src, layout)
    assert (frame.width, frame.height, frame.format.name) == (w, h, pix_fmt)
    back = np.zeros_like(src)
    frame_to_buffer(frame, layout, back)
    np.testing.assert_array_equal(back, src)
    planes = layout.torch_planes(torch.from_numpy(back))
    assert [tuple(p.shape) for p in planes] == list(layout.plane_shapes)


def test_420_is_one_and_a_half_bytes_per_pixel():
    assert PlaneLayout("yuv420p", 64, 48).nbytes == 64 * 48 * 3 // 2
    assert PlaneLayout("yuv420p10le", 64, 48).nbytes == 64 * 48 * 3
    assert PlaneLayout("yuv420p", 63, 47).chroma_size == (24, 32)


def test_decoded_frame_copies_without_line_padding():
    frame = av.VideoFrame(63, 47, "yuv420p")
    assert frame.planes[0].line_size > 63  # FFmpeg pads lines; the packed buffer must not
    layout = PlaneLayout("yuv420p", 63, 47)
    buf = np.zeros(layout.nbytes, np.uint8)
    frame_to_buffer(frame, layout, buf)


def test_unknown_format():
    with pytest.raises(ValueError, match="no packed layout"):
        PlaneLayout("rgb24", 4, 4).nbytes  # noqa: B018


# -- NVDEC frames via DLPack: shape bookkeeping on the CPU, the real thing where CUDA + NVDEC exist --------------

def _identity_processor(in_layout, device="cpu"):
    from stylize_video.pipeline.backends.torch import TorchBackend
    from stylize_video.pipeline.colorinfo import ColourInfo
    from stylize_video.pipeline.processor import FrameProcessor, ProcessorConfig

    colour = ColourInfo("bt709", False, 1, 1, 1)
    out_layout = PlaneLayout("yuv420p", in_layout.width, in_layout.height)
    backend = TorchBackend(torch.nn.Identity(), device, "fp32", scale=1)
    return FrameProcessor(backend, ProcessorConfig(in_layout, out_layout, colour, colour))


class _CudaLikePlane:
    """Answers DLPack like PyAV does for a CUDA frame plane: a CUDA device, and no stream handshake."""

    def __init__(self, t):
        self.t = t

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, *, stream=None):
        if stream is not None:
            raise NotImplementedError("CUDA stream synchronization is not supported")
        return self.t.__dlpack__()


def _cuda_like_frame(sw, w, h):
    from types import SimpleNamespace

    planes = [_CudaLikePlane(torch.zeros(h, w, dtype=torch.uint8)),
              _CudaLikePlane(torch.zeros(h // 2, w // 2, 2, dtype=torch.uint8))]
    return SimpleNamespace(format=SimpleNamespace(name="cuda"), sw_format=SimpleNamespace(name=sw),
                           width=w, height=h, planes=planes)


def test_dlpack_planes_take_the_capsule_without_a_stream():
    from stylize_video.pipeline.io.nvdec import dlpack_planes

    # torch.from_dlpack(plane) would pass the current CUDA stream, which PyAV refuses for CUDA frames.
    planes = dlpack_planes(_cuda_like_frame("nv12", 64, 48))
    assert [tuple(p.shape) for p in planes] == [(48, 64), (24, 32, 2)]


@pytest.mark.parametrize(("sw", "w", "h", "msg"), [("p016le", 64, 48, "not imported via DLPack"),
                                                   ("nv12", 64, 47, "odd frame size")])
def test_dlpack_planes_refuse_what_the_packed_layout_cannot_describe(sw, w, h, msg):
    from stylize_video.pipeline.io.nvdec import dlpack_planes

    with pytest.raises(ValueError, match=msg):  # FileSource then reopens with NVDEC downloads
        dlpack_planes(_cuda_like_frame(sw, w, h))


@pytest.mark.parametrize("pix_fmt", ["nv12", "p010le"])
def test_dlpack_planes_give_the_same_output_as_the_packed_buffer(pix_fmt):
    from stylize_video.pipeline.io.nvdec import dlpack_planes

    layout = PlaneLayout(pix_fmt, 64, 48)
    src = np.random.default_rng(2).integers(0, 256, layout.nbytes, dtype=np.uint8)
    frame = buffer_to_frame(src, layout)
    planes = dlpack_planes(frame)  # a CPU frame exports the shapes PyAV gives CUDA frames, line padding kept
    assert [tuple(p.shape) for p in planes] == [(48, 64), (24, 32, 2)]
    proc = _identity_processor(layout)
    packed, direct = (torch.empty(proc.config.out_layout.nbytes, dtype=torch.uint8) for _ in range(2))
    assert proc(torch.from_numpy(src), packed) is None
    proc.process_device_planes(planes, direct)
    assert torch.equal(packed, direct)


def test_device_planes_of_another_size_are_scaled_to_the_first():
    """NVDEC frames after a mid-stream size change: converted at their own size, scaled on the device."""
    from stylize_video.pipeline.io.nvdec import dlpack_planes

    layout, big = PlaneLayout("nv12", 64, 48), PlaneLayout("nv12", 128, 96)
    # A smooth picture (a ramp in each plane) so that scaling down by two barely changes it.
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(128), indexing="ij")
    # (values kept well inside the RGB gamut: clipping would not survive the round trip)
    y = (60 + (xx + yy) // 2).to(torch.uint8)
    uv = torch.stack([120 + xx[::2, ::2] // 8, 136 - yy[::2, ::2] // 8], dim=-1).to(torch.uint8)
    src = torch.cat([y.flatten(), uv.flatten()]).numpy()
    planes = dlpack_planes(buffer_to_frame(src, big))
    proc = _identity_processor(layout)
    out = torch.empty(proc.config.out_layout.nbytes, dtype=torch.uint8)
    proc.process_device_planes(planes, out)
    got = proc.config.out_layout.torch_planes(out)
    assert [tuple(p.shape) for p in got] == [(48, 64), (24, 32), (24, 32)]
    want_y = torch.nn.functional.avg_pool2d(y[None, None].float(), 2)[0, 0]
    assert (got[0].float() - want_y).abs().max() <= 2
    want_u = torch.nn.functional.avg_pool2d(uv[None, None, :, :, 0].float(), 2)[0, 0]
    assert (got[1].float() - want_u).abs().max() <= 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the NVDEC + DLPack path is not run")
def test_nvdec_dlpack_frames_match_software_decode(tmp_path):
    from stylize_video.pipeline.io.nvdec import dlpack_planes, nvdec_available
    from stylize_video.pipeline.io.source import FileSource, FileSourceOptions, VideoItem
    from stylize_video.pipeline.synth import make_test_clip

    if not nvdec_available():
        pytest.skip("this PyAV's FFmpeg has no CUDA hwaccel")
    clip = make_test_clip(tmp_path / "c.mp4", width=128, height=96, frames=3, audio=False)
    hw = FileSource(clip, FileSourceOptions(hwdec=True, copy_audio=False))
    sw = FileSource(clip, FileSourceOptions(copy_audio=False))
    try:
        if "fallback" in hw.info.decode_path:
            pytest.skip(f"NVDEC did not decode this clip here ({hw.info.decode_path})")
        # nvdec-download here would mean our DLPack import failed on a working NVDEC: a bug, not a skip.
        assert hw.info.decode_path == "nvdec-dlpack" and hw.info.pix_fmt == "nv12"
        frame = next(i.frame for i in hw if isinstance(i, VideoItem))
        ref = next(i.frame for i in sw if isinstance(i, VideoItem))
        torch.cuda.synchronize()  # FFmpeg wrote the frame on its own stream
        planes = dlpack_planes(frame)
        assert planes[0].is_cuda and [tuple(p.shape) for p in planes] == [(96, 128), (48, 64, 2)]
        layout = PlaneLayout(ref.format.name, 128, 96)
        buf = np.zeros(layout.nbytes, np.uint8)
        frame_to_buffer(ref, layout, buf)
        y, u, v = layout.torch_planes(torch.from_numpy(buf))
        assert torch.equal(planes[0].cpu(), y)  # H.264 decoding is bit-exact
        assert torch.equal(planes[1][..., 0].cpu(), u) and torch.equal(planes[1][..., 1].cpu(), v)
        proc = _identity_processor(PlaneLayout("nv12", 128, 96), "cuda")
        out = torch.empty(proc.config.out_layout.nbytes, dtype=torch.uint8, pin_memory=True)
        proc.process_device_planes(planes, out).synchronize()
        cpu_out = torch.empty_like(out)
        _identity_processor(layout).process_device_planes([y, u, v], cpu_out)
        assert (out.int() - cpu_out.int()).abs().max() <= 1  # GPU vs CPU float rounding only
    finally:
        hw.close()
        sw.close()


def test_cuda_work_event_brackets_upload_to_download(monkeypatch):
    """The runner recycles host_in / host_out once the returned event completes: it must be recorded
    on the processor's stream after the download was queued (checked on the CPU with a fake stream)."""
    import contextlib

    layout = PlaneLayout("yuv420p", 32, 24)
    host_in = torch.from_numpy(np.random.default_rng(3).integers(0, 256, layout.nbytes, dtype=np.uint8))
    proc = _identity_processor(layout)
    expected = torch.empty(proc.config.out_layout.nbytes, dtype=torch.uint8)
    proc(host_in, expected)  # the CPU path: done on return
    host_out = torch.zeros_like(expected)
    records = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            pass

        def record(self, stream=None):
            records.append((stream, host_out.clone()))

    proc.stream = object()  # pretend CUDA: everything below must be queued on this stream
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    work = proc(host_in, host_out)
    assert work is not None and len(records) == 2 and all(s is proc.stream for s, _ in records)
    (_, at_start), (_, at_end) = records
    assert not torch.equal(at_start, expected) and torch.equal(at_end, expected)


def test_colour_matrices_reach_the_device_once():
    """A per-frame host->device copy of the 3x3 matrices (pageable memory) would block the host until
    the processor's stream drains, twice per frame; they are built once per (matrix, device, dtype)."""
    from stylize_video.pipeline.colour import _device_matrix

    layout = PlaneLayout("nv12", 32, 24)
    proc = _identity_processor(layout)
    host_in = torch.full((layout.nbytes,), 128, dtype=torch.uint8)
    host_out = torch.empty(proc.config.out_layout.nbytes, dtype=torch.uint8)
    proc(host_in, host_out)
    misses = _device_matrix.cache_info().misses
    proc(host_in, host_out)
    assert _device_matrix.cache_info().misses == misses


@pytest.mark.filterwarnings("ignore:frame size changed")
def test_nvdec_frame_that_cannot_be_imported_mid_stream_is_one_clear_error(tmp_path, monkeypatch):
    """The first NVDEC frame is checked when the file opens; a later one changing to an odd size ends the run
    with one line (and no output that looks complete), not a traceback from the processing thread."""
    from fractions import Fraction

    from stylize_video.errors import StylizeError
    from stylize_video.pipeline.io.sink import EncoderOptions, FileSink
    from stylize_video.pipeline.io.source import FileSource, VideoItem
    from stylize_video.pipeline.job import JobOptions, stylize
    from stylize_video.pipeline.synth import make_test_clip

    class SizeChangingNvdec:
        """A real file source whose third frame arrives as an odd-sized CUDA frame."""

        def __init__(self, src):
            self.src = src

        def __getattr__(self, name):
            return getattr(self.src, name)

        def __iter__(self):
            for item in self.src:
                if isinstance(item, VideoItem) and item.index == 2:
                    odd = _cuda_like_frame("nv12", 63, 47)
                    odd.pts, odd.time_base, odd.duration = item.frame.pts, item.frame.time_base or Fraction(1, 25), 0
                    item = VideoItem(odd, item.index)
                yield item

    # Per NVDEC frame the processor's stream waits for FFmpeg's; a device-wide synchronize would stall the GPU.
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: pytest.fail("device-wide synchronize per frame"))
    clip = make_test_clip(tmp_path / "in.mp4", width=64, height=48, frames=5, audio=False)
    src = SizeChangingNvdec(FileSource(clip))
    out = tmp_path / "out.mp4"
    try:
        from stylize_video.pipeline.backends.torch import TorchBackend

        with pytest.raises(StylizeError, match=r"--hwdec: frame 2 cannot be imported from NVDEC \(odd frame size"):
            stylize(src, FileSink(out, EncoderOptions(preset="ultrafast")),
                    TorchBackend(torch.nn.Identity(), "cpu", "fp32", scale=1), JobOptions(progress=False))
    finally:
        src.close()
    assert not out.exists() and not list(tmp_path.glob(".out*"))
