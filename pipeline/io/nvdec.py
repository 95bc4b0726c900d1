"""NVDEC decoding through PyAV's ``HWAccel("cuda")``, and the hand-over of its frames to the processor.

``FileSource`` opens NVDEC with ``make_hwaccel`` on a thread where torch's CUDA context is current
(``use_torch_context``), so FFmpeg decodes into torch's context; ``dlpack_planes`` imports a CUDA frame's
planes as torch tensors without a copy and ``wait_for_decoder`` orders the processor's stream after
FFmpeg's copies. Everything here needs CUDA at run time; torch and the hwaccel module are imported lazily.
"""

from __future__ import annotations

import av


def nvdec_available() -> bool:
    """FFmpeg built with CUDA hwaccel and a CUDA device visible to torch."""
    import torch
    from av.codec.hwaccel import hwdevices_available

    return "cuda" in hwdevices_available() and torch.cuda.is_available()


def make_hwaccel(keep_on_gpu: bool, device_index: int = 0) -> object:
    """NVDEC decoder settings: frames kept in device memory (for DLPack) or downloaded as NV12/P010.

    FFmpeg's CUDA device uses torch's context: ``current_ctx=1`` (FFmpeg's hwcontext_cuda.c, PyAV >= 18.1
    passes ``options`` to ``av_hwdevice_ctx_create``), so the caller opens from a thread where torch's
    context for ``device_index`` is current (``use_torch_context``). Not ``primary_ctx=1``, which PyAV
    sets by default for ``is_hw_owned``: FFmpeg then asks the primary context for
    CU_CTX_SCHED_BLOCKING_SYNC and, since torch made it active with other flags first (the model loads
    before the source opens), refuses with ENOTSUP ("Primary context already active with incompatible
    flags"). The two options are exclusive (EINVAL), so primary_ctx is turned off explicitly.
    """
    from av.codec.hwaccel import HWAccel

    # ``device`` is the CUDA ordinal as a string (PyAV's HWAccel docstring): the model's GPU, so that
    # DLPack frames are on the device the processor runs on.
    return HWAccel(device_type="cuda", device=str(device_index), allow_software_fallback=True,
                   options=dict(NVDEC_CONTEXT_OPTIONS), is_hw_owned=keep_on_gpu)


# av_hwdevice_ctx_create options for CUDA: share the CUDA context current on the opening thread (torch's).
NVDEC_CONTEXT_OPTIONS = {"primary_ctx": "0", "current_ctx": "1"}


def use_torch_context(device_index: int) -> None:
    """Make torch's (primary) CUDA context for ``device_index`` current on this thread, for ``current_ctx``."""
    import torch

    torch.cuda.set_device(device_index)
    torch.cuda.synchronize(device_index)  # a runtime call on this thread: the context is now current here


def wait_for_decoder(stream: object | None, device: object) -> None:
    """Make ``stream`` (the processor's CUDA stream) wait for FFmpeg's work on its decoded frames.

    FFmpeg's CUDA device has no stream of its own (``hwctx->stream = NULL``, hwcontext_cuda.c), so NVDEC's
    copies run on the legacy default stream, torch's ``default_stream``. An event wait orders our kernels
    after them on the GPU; the host does not block (no device-wide ``synchronize`` per frame). No-op
    without a stream (CPU processors).
    """
    if stream is None:
        return
    import torch

    stream.wait_stream(torch.cuda.default_stream(device))  # type: ignore[attr-defined]


# CUDA sw formats PyAV exports through DLPack that also have a packed layout (stylize_video.pipeline.io.planes).
DLPACK_FORMATS = ("nv12", "p010le")


def dlpack_planes(frame: av.VideoFrame) -> list:
    """CUDA frame planes as torch tensors (zero-copy): [(H, W), (H/2, W/2, 2)], uint8 or uint16 (P010).

    Raises where PyAV/FFmpeg cannot export them, or where they would not match the frame's packed
    layout (other sw formats, odd sizes: PyAV gives H//2 chroma rows where the layout has ceil(H/2)).
    The capsule is taken with ``__dlpack__()`` and no stream: ``torch.from_dlpack(plane)`` passes the
    current stream, which PyAV refuses for CUDA frames. FFmpeg wrote the frame on its own stream, so
    the caller orders its work after FFmpeg's (``wait_for_decoder``) before the planes are used.
    """
    import torch

    if frame.format.name == "cuda":
        sw = frame.sw_format.name if frame.sw_format is not None else None
        if sw not in DLPACK_FORMATS:
            raise ValueError(f"CUDA frames in {sw} are not imported via DLPack (only {', '.join(DLPACK_FORMATS)})")
        if frame.width % 2 or frame.height % 2:
            raise ValueError(f"odd frame size {frame.width}x{frame.height}: DLPack chroma planes would be cropped")
    return [torch.from_dlpack(p.__dlpack__()) for p in frame.planes]
