"""ONNX export: names, opset, metadata, dynamic N/H/W (odd sizes), parity with PyTorch, SR scale."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.metadata import read_metadata, weights_sha256
from stylize_video.export.onnx_export import export_model, save_atomic
from stylize_video.export.verify import MAX_ABS_ERROR, ort_runner, sample_input, torch_runner
from stylize_video.train.networks import SRNet


def test_smoke_graph_contract(fp32_proto):
    g = fp32_proto.graph
    assert [i.name for i in g.input] == ["input"] and [o.name for o in g.output] == ["output"]
    assert max(o.version for o in fp32_proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = g.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"] and dims[1].dim_value == 3
    assert sum(n.op_type == "InstanceNormalization" for n in g.node) == 15
    onnx.checker.check_model(fp32_proto, full_check=True)


def test_metadata_props(fp32_proto, styled_net):
    meta = read_metadata(fp32_proto)
    assert (meta.task, meta.scale, meta.arch) == ("style", 1, "transformer_net")
    assert (meta.value_range, meta.channel_order, meta.layout) == ("0-255", "RGB", "NCHW")
    assert meta.weights_sha256 == weights_sha256(styled_net.state_dict())
    assert len(meta.weights_sha256) == 64


@pytest.mark.parametrize("shape", [(1, 3, 45, 67), (2, 3, 33, 29), (1, 3, 64, 112), (1, 3, 21, 40)])
def test_cardinality_dynamic_sizes_and_parity(fp32_proto, styled_net, shape):
    # Not multiples of 4 / non-square / batch 2: pad-to-multiple-of-4 and the crop must survive export.
    x = sample_input(shape)
    out = ort_runner(fp32_proto)(x)
    ref = torch_runner(styled_net)(x)
    assert out.shape == shape
    assert np.abs(out - ref).max() <= MAX_ABS_ERROR


def test_sr_export_scales_output(make_meta):
    torch.manual_seed(1)
    net = SRNet(scale=2).eval()
    proto = export_model(net, make_meta(net, task="sr", scale=2, arch="sr_net"))
    x = sample_input((1, 3, 19, 26))
    out = ort_runner(proto)(x)
    assert out.shape == (1, 3, 38, 52)
    assert np.abs(out - torch_runner(net)(x)).max() <= MAX_ABS_ERROR


def test_weights_sha256_tracks_weights(make_net):
    a, b = make_net(0), make_net(0)
    assert weights_sha256(a.state_dict()) == weights_sha256(b.state_dict())
    with torch.no_grad():
        b.in1.bias[0] += 1e-3
    assert weights_sha256(a.state_dict()) != weights_sha256(b.state_dict())


def test_exception_old_opset_and_unknown_exporter(styled_net, make_meta):
    with pytest.raises(StylizeError, match="opset 11 is too old"):
        export_model(styled_net, make_meta(styled_net), opset=11)
    with pytest.raises(StylizeError, match="unknown exporter"):
        export_model(styled_net, make_meta(styled_net), exporter="tf2onnx")


def test_exception_missing_metadata(tmp_path):
    bare = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    with pytest.raises(StylizeError, match="no stylize-video metadata"):
        read_metadata(bare)
    with pytest.raises(StylizeError, match="not found"):
        read_metadata(tmp_path / "nope.onnx")


def test_save_atomic_leaves_no_partial(fp32_proto, tmp_path):
    out = save_atomic(fp32_proto, tmp_path / "sub" / "m.onnx")
    assert out.is_file() and not list(tmp_path.rglob("*.partial"))
    assert read_metadata(out).task == "style"
    long = save_atomic(fp32_proto, tmp_path / ("m" * 245 + ".onnx"))  # fits; "NAME.partial" would not, unshortened
    assert read_metadata(long).task == "style" and not list(tmp_path.rglob("*.partial"))


@pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None,
                    reason="the dynamo exporter needs onnxscript, which is not a project dependency")
def test_dynamo_exporter_same_contract(styled_net, make_meta):
    proto = export_model(styled_net, make_meta(styled_net), exporter="dynamo", opset=18)
    x = sample_input((1, 3, 45, 67))
    assert np.abs(ort_runner(proto)(x) - torch_runner(styled_net)(x)).max() <= MAX_ABS_ERROR


def test_dynamo_exporter_without_onnxscript_is_clear(styled_net, make_meta, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import now raises ImportError
    with pytest.raises(StylizeError, match="needs the onnxscript package"):
        export_model(styled_net, make_meta(styled_net), exporter="dynamo")
