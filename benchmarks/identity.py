"""``--identity-model``: a do-nothing ONNX model (output = input x 1), to measure the frame path itself.

One ``Mul`` node, dynamic N/H/W, float32 NCHW RGB 0..255 in and out, with our metadata (task style,
scale 1), written with ``onnx.helper`` (no exporter involved). Run through ``onnxruntime`` it still
produces a fresh output tensor per frame, as any real model does, so the end-to-end section times
decode, colour conversion, host copies, one cheap model call and encode: what ``stylize-video`` adds
on top of FFmpeg (issue 12).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from stylize_video.outfiles import fit_name

IDENTITY_NAME = "identity.onnx"


def make_identity_onnx(work_dir: Path) -> Path:
    """Write (once) and return ``work_dir/identity.onnx``."""
    import onnx
    from onnx import TensorProto, helper
    from stylize_video.export.metadata import ModelMetadata, write_metadata
    from stylize_video.export.onnx_export import INPUT_NAME, OUTPUT_NAME

    path = Path(work_dir) / IDENTITY_NAME
    if path.is_file():
        return path
    dims = ["n", 3, "h", "w"]
    graph = helper.make_graph(
        [helper.make_node("Mul", [INPUT_NAME, "one"], [OUTPUT_NAME])], "identity",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, dims)],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    write_metadata(model, ModelMetadata(task="style", scale=1, arch="identity",
                                        weights_sha256=hashlib.sha256(b"identity").hexdigest(),
                                        source="stylize-bench --identity-model", exporter="onnx.helper"))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(fit_name(path.name, before=".", after=f".{os.getpid()}.partial", folder=path.parent))
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    return path
