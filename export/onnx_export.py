"""PyTorch network -> ONNX with dynamic batch/height/width, input ``input`` and output ``output``.

Two exporters, same graph contract:

* ``torchscript`` (default): ``torch.onnx.export(..., dynamo=False, dynamic_axes=...)``. Needs nothing beyond
  torch, exports in well under a second, and keeps ``pad_to_multiple``'s ``Shape -> Mod -> Pad`` arithmetic
  symbolic, so odd sizes such as 1081x1917 run (checked with onnxruntime in the tests). It is deprecated
  upstream but still ships in torch 2.14.
* ``dynamo``: ``torch.onnx.export(..., dynamo=True, dynamic_shapes=...)``. Gives a leaner graph (no
  Reshape/Transpose chains around each ``Pad``) but needs the ``onnxscript`` package (not a dependency
  here) and takes ~10 s on a 2-core CPU. Same parity results where it was tried.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.metadata import ModelMetadata, write_metadata
from stylize_video.outfiles import partial_path
from torch import nn

INPUT_NAME = "input"
OUTPUT_NAME = "output"
MIN_OPSET = 17  # InstanceNormalization maps to TensorRT's native INormalizationLayer from 17 on
DEFAULT_OPSET = 17
# Sample used only to trace; non-square and not a multiple of 4 so no size is baked in by accident.
_SAMPLE_HW = (45, 67)


def _export_torchscript(model: nn.Module, sample: torch.Tensor, opset: int) -> onnx.ModelProto:
    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # "instance_norm is set to train=True": InstanceNorm2d without running stats always uses input
        # statistics, which is exactly what ONNX InstanceNormalization computes. Constant-folding notes too.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample,), buf, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
    return onnx.load_from_string(buf.getvalue())


def _export_dynamo(model: nn.Module, sample: torch.Tensor, opset: int) -> onnx.ModelProto:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter imports it; fail with our message first)
    except ImportError:
        raise StylizeError("--exporter dynamo needs the onnxscript package (pip install onnxscript); "
                           "the default torchscript exporter does not") from None
    from torch.export import Dim

    # Dim names must differ from the argument name; bounds keep torch.export's guards satisfiable.
    dims = {0: Dim("batch", min=1, max=1024), 2: Dim("height", min=5, max=16384), 3: Dim("width", min=5, max=16384)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (sample,), dynamo=True, opset_version=opset, verbose=False,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes={next(iter(_forward_arg_names(model))): dims})
    if program is None:
        raise StylizeError("the dynamo exporter returned no program")
    return program.model_proto


def _forward_arg_names(model: nn.Module) -> list[str]:
    import inspect

    return [p for p in inspect.signature(model.forward).parameters if p != "self"]


EXPORTERS: dict[str, Callable[[nn.Module, torch.Tensor, int], onnx.ModelProto]] = {
    "torchscript": _export_torchscript,
    "dynamo": _export_dynamo,
}


def export_model(model: nn.Module, meta: ModelMetadata, *, opset: int = DEFAULT_OPSET,
                 exporter: str = "torchscript") -> onnx.ModelProto:
    """Export an eval-mode network to an in-memory ONNX model with our metadata.

    Graph: ``input`` (N, 3, H, W) float32 RGB 0..255 -> ``output`` (N, 3, H*scale, W*scale), all of
    N, H, W dynamic.
    """
    if opset < MIN_OPSET:
        raise StylizeError(f"opset {opset} is too old: use >= {MIN_OPSET}")
    try:
        fn = EXPORTERS[exporter]
    except KeyError:
        raise StylizeError(f"unknown exporter {exporter!r}; choose from {', '.join(EXPORTERS)}") from None
    model = model.eval().cpu().float()
    # Traced at a size the network accepts; one that is not a multiple of common window sizes (7, 8, 12, 16),
    # so conditional "pad to the window" code is traced as taken and stays dynamic (SwinIR, HAT, ...).
    sample = torch.rand(1, 3, *meta.size_rules.padded(*_SAMPLE_HW)) * 255.0
    with torch.no_grad():
        proto = fn(model, sample, opset)
    meta.exporter = exporter
    write_metadata(proto, meta)
    proto.producer_name = "stylize-video"
    return proto


def save_atomic(proto: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write an ONNX model under a temporary name, then rename: a half-written file never looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
