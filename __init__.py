"""stylize-video: real-time neural style transfer and super-resolution for video.

After Johnson, Alahi & Fei-Fei, *Perceptual Losses for Real-Time Style Transfer and Super-Resolution*
(ECCV 2016). One import namespace, four stages (data flows train -> export -> pipeline <- benchmarks):

- ``stylize_video.train``: transformation networks, VGG perceptual losses, training, SR evaluation.
- ``stylize_video.export``: ONNX / mixed-FP16 ONNX / TensorRT engines, the pretrained-style registry.
- ``stylize_video.pipeline``: decode -> colour -> model -> encode, live I/O, the ``Stylizer`` API.
- ``stylize_video.benchmarks``: FPS against the PyTorch eager FP32 baseline.

``stylize_video.errors`` (``StylizeError``, ``run_cli``) and ``stylize_video.cliargs`` (the option
conventions every console script shares) belong to no stage: every stage uses them.

Nothing heavy is imported here: ``from stylize_video import Stylizer`` loads torch only when the
name is first used (PEP 562).
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


__all__ = ["Stylizer", "__version__"]
