"""Pipeline stage: ``stylize-video`` (decode -> colour -> model -> encode) and the ``Stylizer`` API."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): ``import stylize_video.pipeline`` and ``stylize-video --help`` stay fast, no torch import.
    if name == "Stylizer":
        from stylize_video.pipeline.stylizer import Stylizer

        return Stylizer
    raise AttributeError(f"module 'stylize_video.pipeline' has no attribute {name!r}")


__all__ = ["Stylizer"]
