"""stylize-video: real-time neural style transfer and super-resolution for video.

After Johnson, Alahi & Fei-Fei, *Perceptual Losses for Real-Time Style Transfer and Super-Resolution*
(ECCV 2016). One import namespace, four stages (data flows train -> export -> pipeline <- benchmarks):

- ``stylize_video.train``: transformation networks, VGG perceptual losses, training, SR evaluation.
- ``stylize_video.export``: ONNX / mixed-FP16 ONNX / TensorRT engines, the pretrained-style registry.
- ``stylize_video.pipeline``: decode -> colour -> model -> encode, live I/O, the ``Stylizer`` API.
- ``stylize_video.benchmarks``: FPS against the PyTorch eager FP32 baseline.

``stylize_video.errors`` (``StylizeError``, ``run_cli``), ``stylize_video.cliargs`` (the option
conventions every console script shares), ``stylize_video.outfiles`` (how outputs are checked and written),
``stylize_video.sizerules`` and ``stylize_video.modelfiles`` (model file kinds) belong to no stage: every stage
uses them.

``import stylize_video`` and the four stage packages import nothing heavy (no torch, PyAV or ONNX): the
``Stylizer`` name is resolved on first access (PEP 562), so ``from stylize_video import Stylizer`` is that
access and loads torch then, while code that never asks for it does not pay for it.
"""

from __future__ import annotations

from typing import Any

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("stylize-video")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "Stylizer":
        from stylize_video.pipeline.stylizer import Stylizer

        return Stylizer
    raise AttributeError(f"module 'stylize_video' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazily loaded ``Stylizer`` (PEP 562), for ``dir()`` and completion."""
    return sorted({*globals(), "Stylizer"})


__all__ = ["Stylizer", "__version__"]
