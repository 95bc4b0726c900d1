"""Catch a 0..1 ONNX model run in the assumed 0..255 convention before it writes a black video.

An ONNX file without our ``stylize.*`` metadata and without ``--value-range`` is run as NCHW RGB 0..255
(``stylize_video.export.conventions``). Most published SR models (Real-ESRGAN, chaiNNer and vs-mlrt exports) take
RGB in 0..1 and clamp their output to 0..1: fed 0..255, they return frames that are black once stored. So at load,
when the value range is only assumed, one probe frame (a colour gradient spanning 0..255 in every channel, with
mid-grey in it) goes through the model and its output range decides:

* every output value within [-1, 1] (``REFUSE_PEAK``): no 0..255 model gives that for this input; refused with
  the flag to pass (``--value-range 0-1``, or ``--value-range 0-255`` to run it as it is);
* output peak below ``WARN_PEAK`` (under ~3 % of white): a warning that ``-q`` does not hide.
"""

from __future__ import annotations

import math
import warnings

import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend

REFUSE_PEAK = 1.0 + 1e-3  # |output| <= this everywhere: a 0..1 (or -1..1) model, not a 0..255 one
WARN_PEAK = 8.0  # output peak below 8 of 255: a near-black video
PROBE_SIDE = 32


def probe_frame(height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) float32 RGB 0..255: R ramps left to right, G top to bottom, B the other diagonal; every channel
    spans 0..255 (for sides >= 2) and the centre is mid-grey."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return (torch.stack([xx, yy, 1 - (xx + yy) / 2]) * 255.0)[None].float()


def check_assumed_value_range(backend: Backend, name: str) -> None:
    """Run ``probe_frame`` through ``backend`` (size rules applied) and refuse or warn as the module says.

    ``backend``: loaded, taking NCHW RGB (our convention, as assumed). ``name``: the model file, for the message.
    Raises ``StylizeError`` (one line) for the unambiguous case; a non-finite output is left to the frame path's
    NaN/Inf check.
    """
    from stylize_video.pipeline.sizing import SizedBackend

    sized = SizedBackend(backend)  # not closed here: it only wraps ``backend``
    h, w = sized.size_rules.fixed or (PROBE_SIDE, PROBE_SIDE)
    with torch.inference_mode():
        y = sized(probe_frame(h, w).to(backend.device)).float()
        lo, hi = float(y.min()), float(y.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return
    if max(abs(lo), abs(hi)) <= REFUSE_PEAK:
        raise StylizeError(f"{name}: for a probe frame spanning 0..255 the model's output stays within "
                           f"[{lo:.3g}, {hi:.3g}], so it is not a 0..255 model (the assumed convention would write a "
                           "black video): pass --value-range 0-1 if it takes RGB in 0..1 (--value-range 0-255 runs it "
                           "as it is)")
    if hi < WARN_PEAK:
        warnings.warn(f"{name}: for a probe frame spanning 0..255 the model's output peaks at {hi:.3g} (of 255): "
                      "the video will be nearly black; if the model takes RGB in 0..1, pass --value-range 0-1 "
                      "(--value-range 0-255 silences this)", stacklevel=3)
