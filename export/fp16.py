"""Mixed-precision (FP16) ONNX graphs with onnxconverter-common, normalisation kept in FP32.

Why: InstanceNormalization computes a variance, sum((x - mean)^2) / HW. Once |x - mean| > 256 the
square exceeds FP16's 65504 and the layer returns inf/0 for the whole channel. Convolutions,
ReLU, Add, Pad, Resize are safe in FP16 at 0..255 activations. onnxconverter-common's
``DEFAULT_OP_BLOCK_LIST`` does NOT contain InstanceNormalization, so we add it (and the other
reduction-style normalisations) and let the converter insert the Cast nodes around them.
"""

from __future__ import annotations

import warnings

import onnx
from onnx import TensorProto

# Ops whose internal reductions overflow FP16 on 0..255 activations.
NORMALISATION_OPS = ("InstanceNormalization", "LayerNormalization", "GroupNormalization",
                     "BatchNormalization", "ReduceMean", "ReduceSumSquare", "ReduceL2")


def block_list() -> list[str]:
    """Ops kept in FP32: the converter's defaults plus the normalisations above."""
    from onnxconverter_common import float16

    return sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(NORMALISATION_OPS))


def inline_identity_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer.

    torch's exporter de-duplicates equal parameters (e.g. freshly initialised InstanceNorm biases) into
    Identity nodes; the FP16 converter casts the initializer but not the Identity output, leaving a
    float16 tensor feeding an FP32 InstanceNormalization (onnxruntime: "Type Error ... does not match").
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in inits:
            copy = TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def _convert(model: onnx.ModelProto, op_block_list: list[str], keep_io_types: bool) -> onnx.ModelProto:
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the model contains values out of FP16 range" for big constants
        return float16.convert_float_to_float16(inline_identity_initializers(model), op_block_list=op_block_list,
                                                keep_io_types=keep_io_types, disable_shape_infer=False)


def to_mixed_fp16(model: onnx.ModelProto, *, fp16_io: bool = False) -> onnx.ModelProto:
    """FP16 convolutions/elementwise, FP32 normalisations; I/O float32 unless ``fp16_io``.

    Shapes: unchanged; the ``input``/``output`` names are kept.
    """
    return _convert(model, block_list(), keep_io_types=not fp16_io)


def to_naive_fp16(model: onnx.ModelProto, *, fp16_io: bool = False) -> onnx.ModelProto:
    """The converter's defaults only (InstanceNormalization in FP16): the overflow-prone baseline that
    the checks must reject. Kept for verification and tests, never written by the CLI."""
    from onnxconverter_common import float16

    return _convert(model, list(float16.DEFAULT_OP_BLOCK_LIST), keep_io_types=not fp16_io)


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named tensor (after shape inference), initializers included."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    for node in g.node:  # Constant nodes are not in value_info
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def fp16_normalisation_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of normalisation nodes whose data input is float16 (must be empty for a safe graph)."""
    types = tensor_types(model)
    return [n.name or n.output[0] for n in model.graph.node
            if n.op_type in NORMALISATION_OPS and types.get(n.input[0]) == TensorProto.FLOAT16]


def is_fp16_graph(model: onnx.ModelProto) -> bool:
    """Whether any Conv runs in float16 (i.e. the graph went through an FP16 conversion)."""
    types = tensor_types(model)
    return any(n.op_type == "Conv" and types.get(n.input[0]) == TensorProto.FLOAT16 for n in model.graph.node)


def io_dtype(model: onnx.ModelProto) -> str:
    """``"float16"`` or ``"float32"`` from the graph input's element type."""
    elem = model.graph.input[0].type.tensor_type.elem_type
    return "float16" if elem == TensorProto.FLOAT16 else "float32"
