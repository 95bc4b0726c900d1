"""Import ONNX-zoo fast_neural_style weights into our TransformerNet, and ``stylize-export fetch``.

The zoo graphs are fixed at 1x3x224x224 and their tensor names are whatever torch 1.0 produced, so the
mapping is structural, not by name: the k-th ``Conv`` node in graph (topological) order is the k-th
convolution of TransformerNet's forward pass, likewise for ``InstanceNormalization``; every weight shape
is checked, and the imported network is then run against the ONNX graph itself on onnxruntime.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from stylize_video.errors import StylizeError
from stylize_video.export.download import fetch_file
from stylize_video.export.registry import PYTORCH_EXAMPLES, archive_member, zoo_model
from stylize_video.train.checkpoint import ModelInfo, load_state, save_checkpoint, strip_legacy_keys
from stylize_video.train.networks import TransformerNet
from torch import nn

IMPORT_TOLERANCE = 0.05  # max abs difference on 0..255 between the zoo graph and the imported network

# Forward order of TransformerNet's convolutions and instance norms (matches pytorch/examples' forward).
_RES = [f"res{i}" for i in range(1, 6)]
CONV_ORDER = ["conv1", "conv2", "conv3", *[f"{r}.{c}" for r in _RES for c in ("conv1", "conv2")],
              "deconv1", "deconv2", "deconv3"]
NORM_ORDER = ["in1", "in2", "in3", *[f"{r}.{n}" for r in _RES for n in ("in1", "in2")], "in4", "in5"]


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers, Constant-node values and Identity aliases of either (torch de-duplicates weights)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def zoo_state_dict(model: onnx.ModelProto) -> dict[str, torch.Tensor]:
    """TransformerNet state_dict from a zoo graph (any opset the zoo used), mapped by node order."""
    graph = model.graph
    values = _constants(graph)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    if (len(convs), len(norms)) != (len(CONV_ORDER), len(NORM_ORDER)):
        raise StylizeError(f"not a fast_neural_style TransformerNet graph: {len(convs)} Conv and {len(norms)} "
                           f"InstanceNormalization nodes (expected {len(CONV_ORDER)} and {len(NORM_ORDER)})")

    def weight(node: onnx.NodeProto, index: int) -> torch.Tensor:
        if len(node.input) <= index or node.input[index] not in values:
            raise StylizeError(f"{node.op_type} node {node.name or node.output[0]} has no constant input {index}")
        return torch.from_numpy(np.array(values[node.input[index]], dtype=np.float32))

    state: dict[str, torch.Tensor] = {}
    for node, name in zip(convs, CONV_ORDER):
        state[f"{name}.conv2d.weight"], state[f"{name}.conv2d.bias"] = weight(node, 1), weight(node, 2)
    for node, name in zip(norms, NORM_ORDER):
        state[f"{name}.weight"], state[f"{name}.bias"] = weight(node, 1), weight(node, 2)
    return state


def import_zoo_model(model: onnx.ModelProto, *, check: bool = True) -> tuple[TransformerNet, float]:
    """TransformerNet with the zoo graph's weights, and the max abs error against the graph on onnxruntime.

    Shapes are checked by the strict load (a wrong mapping fails there); ``check`` also runs both.
    """
    net = TransformerNet()
    load_state(net, zoo_state_dict(model), name="ONNX zoo graph")
    net.eval()
    if not check:
        return net, float("nan")
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 224 for d in inp.shape]  # the zoo graphs are 1x3x224x224
    x = np.random.default_rng(0).uniform(0, 255, size=shape).astype(np.float32)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    theirs = session.run(None, {inp.name: x})[0]
    err = float(np.abs(ours - theirs).max())
    if not err <= IMPORT_TOLERANCE:
        raise StylizeError(f"imported network differs from the zoo graph by {err:.3g} (limit {IMPORT_TOLERANCE}): "
                           "the graph is not the pytorch/examples TransformerNet")
    return net, err


@dataclass
class Fetched:
    """What ``fetch`` produced."""

    style: str
    source: str
    download: Path
    checkpoint: Path
    import_error: float | None  # zoo only


def _zoo(style: str, opset: int, root: Path) -> tuple[nn.Module, Fetched]:
    entry = zoo_model(style, opset)
    path = fetch_file(entry.url, root / "downloads" / entry.filename, entry.sha256, entry.size)
    net, err = import_zoo_model(onnx.load(str(path)))
    ckpt = root / "models" / f"{entry.style}.pth"
    save_checkpoint(ckpt, net, ModelInfo(arch="transformer_net", task="style", scale=1,
                                         config={"origin": entry.url, "sha256": entry.sha256}))
    return net, Fetched(entry.style, f"onnx-model-zoo:{entry.filename}", path, ckpt, err)


def _pytorch_examples(style: str, root: Path, allow_unverified: bool) -> tuple[nn.Module, Fetched]:
    member = archive_member(style)
    path = fetch_file(PYTORCH_EXAMPLES.url, root / "downloads" / PYTORCH_EXAMPLES.filename, PYTORCH_EXAMPLES.sha256,
                      allow_unverified=allow_unverified)
    try:
        with zipfile.ZipFile(path) as zf:
            found = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not found:
                raise StylizeError(f"{path} has no {member}; it holds: {', '.join(zf.namelist()[:8])}")
            with zf.open(found[0]) as f:
                state = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except zipfile.BadZipFile as exc:
        raise StylizeError(f"{path} is not the pytorch/examples saved_models.zip ({exc})") from None
    net = TransformerNet()
    load_state(net, strip_legacy_keys(state), name=f"{path}:{member}")
    net.eval()
    name = member.removesuffix(".pth").replace("_", "-")
    ckpt = root / "models" / f"{name}.pth"
    save_checkpoint(ckpt, net, ModelInfo(arch="transformer_net", task="style", scale=1, source="pytorch-examples",
                                         config={"origin": PYTORCH_EXAMPLES.url}))
    return net, Fetched(name, "pytorch-examples", path, ckpt, None)


def fetch_style(style: str, root: Path, *, source: str = "zoo", opset: int = 9,
                allow_unverified: bool = False) -> tuple[nn.Module, Fetched]:
    """Download (cached, hash-checked), import into TransformerNet and save our checkpoint under ``root/models``."""
    if source == "zoo":
        return _zoo(style, opset, root)
    if source == "pytorch-examples":
        return _pytorch_examples(style, root, allow_unverified)
    raise StylizeError(f"unknown source {source!r}; choose zoo or pytorch-examples")
