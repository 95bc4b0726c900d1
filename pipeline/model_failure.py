"""A runtime's own exception from a model call, as one line naming the model and the frame.

ONNX Runtime raises ``Fail``/``InvalidArgument`` with a C++ status text, torch a ``RuntimeError`` (or
``OutOfMemoryError``), TensorRT bindings ``RuntimeError``s: in the frame path any of them would reach the user
as a traceback. ``FrameProcessor`` wraps the backend call and raises ``ModelFailure``; the ``Runner`` knows which
frame it was and turns it into ``stylize-video: error: the model (...) failed on frame N ...: <runtime's line>``.
"""

from __future__ import annotations

import re

from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend

_MAX_REASON = 400
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# ONNX Runtime's status text: "[ONNXRuntimeError] : 1 : FAIL : ..." and, inside, the C++ source location and
# signature that raised ("/onnxruntime_src/.../reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(...)").
_ORT_NOISE = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : |/onnxruntime_src/\S+:\d+ \S+?\([^)]*\) ")


def first_line(exc: BaseException) -> str:
    """The exception's first non-empty line, without terminal colour codes or ONNX Runtime's C++ locations, at most
    ``_MAX_REASON`` characters."""
    text = _ORT_NOISE.sub("", _ANSI.sub("", str(exc)).strip())
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return line if len(line) <= _MAX_REASON else line[:_MAX_REASON - 1] + "…"


class ModelFailure(StylizeError):
    """``backend`` raised ``exc`` (not a ``StylizeError``) on a call; ``at`` says where, for the user."""

    def __init__(self, backend: Backend, exc: BaseException) -> None:
        from stylize_video.pipeline.model_summary import describe_model

        facts = describe_model(backend)
        self.model = f"{facts['model']}, {facts['runtime']}"
        self.reason = f"{type(exc).__name__}: {first_line(exc)}"
        super().__init__(f"the model ({self.model}) failed: {self.reason}")

    def at(self, where: str) -> StylizeError:
        """The error for the user: ``where`` is e.g. ``frame 12 (0.480 s)`` or ``the warm-up frame``."""
        return StylizeError(f"the model ({self.model}) failed on {where}: {self.reason}")


def frame_name(pts: int | None, time_base: object, index: int) -> str:
    """``frame 12 (0.480 s)``: ``index`` counts decoded frames from 0, the time is the frame's PTS."""
    at = f" ({float(pts * time_base):.3f} s)" if pts is not None and time_base else ""
    return f"frame {index}{at}"
