"""I/O conventions of ONNX image models, and the graph wrapper that turns any of them into ours.

Ours (every backend, ``stylize_video.pipeline.backends.base.Backend``): (N, 3, H, W) float RGB 0..255.
Other people's ONNX files often take RGB in 0..1 (Real-ESRGAN, chaiNNer, vs-mlrt), some NHWC or BGR
(OpenCV-minded exports). Where the file carries our ``stylize.*`` metadata its convention is read from
there first; otherwise ``--value-range {0-255,0-1}``, ``--layout {nchw,nhwc}``, ``--channel-order {rgb,bgr}``
say it, and without them it is assumed ours — and the summary says which it was and where it came from.

A foreign convention is adapted inside the graph (``adapt_graph``): a channel Gather, a Mul and a Transpose
in front of the model and the inverse after it, so every runtime (ONNX Runtime, its TensorRT EP) sees one
graph in our convention and fuses the scaling into the first convolution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from stylize_video.errors import StylizeError

VALUE_RANGES = ("0-255", "0-1")
LAYOUTS = ("nchw", "nhwc")
CHANNEL_ORDERS = ("rgb", "bgr")
FLAG_OF = {"value_range": "--value-range", "layout": "--layout", "channel_order": "--channel-order"}
_BGR = np.array([2, 1, 0], dtype=np.int64)


@dataclass(frozen=True)
class ConventionFlags:
    """What the user said on the command line (None: not given)."""

    value_range: str | None = None
    layout: str | None = None
    channel_order: str | None = None

    def given(self) -> dict[str, str]:
        return {k: v for k, v in (("value_range", self.value_range), ("layout", self.layout),
                                  ("channel_order", self.channel_order)) if v is not None}


@dataclass(frozen=True)
class Convention:
    """How a model's input and output tensors are laid out; ``source`` says how we know."""

    value_range: str = "0-255"
    layout: str = "nchw"
    channel_order: str = "rgb"
    source: str = "ours"

    def __post_init__(self) -> None:
        for name, allowed in (("value_range", VALUE_RANGES), ("layout", LAYOUTS), ("channel_order", CHANNEL_ORDERS)):
            value = str(getattr(self, name)).lower()
            if value not in allowed:
                raise StylizeError(f"{FLAG_OF[name]} must be one of {', '.join(allowed)}, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def native(self) -> bool:
        """True for our own convention (no adaptation needed)."""
        return (self.value_range, self.layout, self.channel_order) == ("0-255", "nchw", "rgb")

    def describe(self) -> str:
        """``NHWC BGR 0..1 (from --layout/--channel-order/--value-range)``."""
        return f"{self.layout.upper()} {self.channel_order.upper()} {self.value_range.replace('-', '..')} ({self.source})"


def from_metadata(props: dict[str, str]) -> Convention | None:
    """The convention our exporter recorded (``stylize.value_range`` / ``layout`` / ``channel_order``), or None."""
    keys = ("value_range", "layout", "channel_order")
    if not any(f"stylize.{k}" in props for k in keys):
        return None
    values = {k: props[f"stylize.{k}"] for k in keys if f"stylize.{k}" in props}
    return Convention(**values, source="stylize.* metadata")


def resolve(props: dict[str, str], flags: ConventionFlags | None, name: str = "the model") -> Convention:
    """Metadata first; flags that contradict it are refused; flags alone; else ours, marked as assumed."""
    given = (flags or ConventionFlags()).given()
    recorded = from_metadata(props)
    if recorded is not None:
        for key, value in given.items():
            if getattr(recorded, key) != str(value).lower():
                raise StylizeError(f"{name} records its I/O convention in its stylize.* metadata "
                                   f"({recorded.describe()}); {FLAG_OF[key]} {value} contradicts it: drop the flag")
        return recorded
    if given:
        return Convention(**given, source="from " + "/".join(FLAG_OF[k] for k in given)
                          + (", the rest assumed" if len(given) < 3 else ""))
    return Convention(source="assumed, no metadata or flags: set --value-range/--layout/--channel-order if wrong")


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]  # IR < 4 lists initializers as inputs too


def _dims(value: onnx.ValueInfoProto) -> list[onnx.TensorShapeProto.Dimension]:
    return list(value.type.tensor_type.shape.dim)


def check_channels(model: onnx.ModelProto, conv: Convention, name: str) -> None:
    """Refuse a graph whose fixed channel dimension is not 3 where ``conv`` puts channels (wrong layout or a
    grey/RGBA model), before any frame is decoded."""
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        raise StylizeError(f"{name} has {len(inputs)} inputs; an image-to-image model has one")
    dims = _dims(inputs[0])
    if len(dims) != 4:
        raise StylizeError(f"{name} input has {len(dims)} dimensions; an image model takes 4 (N, C, H, W)")
    axis, other = (1, 3) if conv.layout == "nchw" else (3, 1)
    c = dims[axis].dim_value if dims[axis].HasField("dim_value") else None
    o = dims[other].dim_value if dims[other].HasField("dim_value") else None
    if c == 3 or c is None and o != 3:
        return
    if o == 3:
        want = "nhwc" if conv.layout == "nchw" else "nchw"
        raise StylizeError(f"{name} takes its 3 channels in dimension {other} ({want.upper()}), not {axis} "
                           f"({conv.layout.upper()}, {conv.source}): pass --layout {want}")
    kind = {1: "grey (1-channel)", 4: "RGBA (4-channel)"}.get(c, f"{c}-channel")
    raise StylizeError(f"{name} takes {kind} images; video frames are RGB, so only 3-channel models run")


def _transposed(value: onnx.ValueInfoProto, name: str, perm: tuple[int, ...] | None) -> onnx.ValueInfoProto:
    dims = _dims(value)
    if perm is not None and len(dims) == 4:
        dims = [dims[p] for p in perm]
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
    return helper.make_tensor_value_info(name, value.type.tensor_type.elem_type, shape)


def adapt_graph(model: onnx.ModelProto, conv: Convention) -> onnx.ModelProto:
    """A copy of ``model`` taking and giving (N, 3, H, W) RGB 0..255, for a graph in convention ``conv``.

    Input side: [Gather channels 2,1,0] -> [Mul 1/255] -> [Transpose to NHWC]; output side the inverse,
    in reverse order. The element types stay the graph's own (float32 or float16).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    src_in, src_out = _graph_inputs(out)[0], g.output[0]
    new_in, new_out = "stylize.input", "stylize.output"
    to_model = (0, 2, 3, 1) if conv.layout == "nhwc" else None

    def const(name: str, value: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(value, name))
        return name

    def np_type(value: onnx.ValueInfoProto) -> type:
        return np.float16 if value.type.tensor_type.elem_type == TensorProto.FLOAT16 else np.float32

    pre: list[onnx.NodeProto] = []
    steps_in = [("bgr", conv.channel_order == "bgr"), ("unit", conv.value_range == "0-1"), ("nhwc", to_model)]
    cur = new_in
    todo = [s for s, on in steps_in if on]
    for i, step in enumerate(todo):
        nxt = src_in.name if i == len(todo) - 1 else f"stylize.pre{i}"
        if step == "bgr":
            pre.append(helper.make_node("Gather", [cur, const("stylize.bgr_in", _BGR)], [nxt], axis=1))
        elif step == "unit":
            k = const("stylize.to_unit", np.array(1.0 / 255.0, dtype=np_type(src_in)))
            pre.append(helper.make_node("Mul", [cur, k], [nxt]))
        else:
            pre.append(helper.make_node("Transpose", [cur], [nxt], perm=list(to_model)))  # type: ignore[arg-type]
        cur = nxt
    post: list[onnx.NodeProto] = []
    cur = src_out.name
    steps_out = [s for s, on in (("nchw", to_model), ("unit", conv.value_range == "0-1"),
                                 ("bgr", conv.channel_order == "bgr")) if on]
    for i, step in enumerate(steps_out):
        nxt = new_out if i == len(steps_out) - 1 else f"stylize.post{i}"
        if step == "nchw":
            post.append(helper.make_node("Transpose", [cur], [nxt], perm=[0, 3, 1, 2]))
        elif step == "unit":
            post.append(helper.make_node("Mul", [cur, const("stylize.from_unit", np.array(255.0, np_type(src_out)))],
                                         [nxt]))
        else:  # channels are in dimension 1 by now
            post.append(helper.make_node("Gather", [cur, const("stylize.bgr_out", _BGR)], [nxt], axis=1))
        cur = nxt
    nodes = [*pre, *g.node, *post]
    del g.node[:]
    g.node.extend(nodes)
    inputs = [_transposed(src_in, new_in, (0, 3, 1, 2) if to_model else None) if i.name == src_in.name else i
              for i in g.input]
    del g.input[:]
    g.input.extend(inputs)
    outputs = [_transposed(src_out, new_out, (0, 3, 1, 2) if to_model else None), *g.output[1:]]
    del g.output[:]
    g.output.extend(outputs)
    return out


def prepare_onnx(path: str | os.PathLike[str],
                 flags: ConventionFlags | None = None) -> tuple[bytes | None, Convention, dict[str, str]]:
    """(graph bytes to run instead of the file, or None when the file is already ours; the convention used;
    the file's metadata_props).

    Raises ``StylizeError`` (one line) for a contradicting flag, a layout that does not match the graph's
    fixed channel dimension, or a model that does not take 3 channels.
    """
    from stylize_video.export.metadata import load_onnx

    path = Path(path)
    head = load_onnx(path, load_external_data=False)
    props = {p.key: p.value for p in head.metadata_props}
    conv = resolve(props, flags, path.name)
    check_channels(head, conv, path.name)
    if conv.native:
        return None, conv, props
    full = load_onnx(path)  # with external weights, if the file has them
    return adapt_graph(full, conv).SerializeToString(), conv, props


def native(source: str) -> Convention:
    """Our own convention, for models that cannot have another (checkpoints, our engines)."""
    return replace(Convention(), source=source)
