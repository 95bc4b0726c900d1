"""Mixed-precision graphs: no FP16 InstanceNormalization, PSNR >= 45 dB incl. a stressed input, and the
naive conversion (converter defaults) failing the same check, which proves the check bites."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from stylize_video.errors import StylizeError
from stylize_video.export.fp16 import (
    fp16_normalisation_nodes,
    inline_identity_initializers,
    io_dtype,
    is_fp16_graph,
    tensor_types,
    to_mixed_fp16,
    to_naive_fp16,
)
from stylize_video.export.verify import (
    MIN_PSNR_DB,
    STRESS_SCALE,
    VerifyReport,
    check_fp16,
    fp16_psnrs,
    ort_runner,
    sample_input,
    torch_runner,
)


def test_smoke_mixed_graph_types(mixed_proto):
    assert is_fp16_graph(mixed_proto)
    assert fp16_normalisation_nodes(mixed_proto) == []  # the graph assert the brief asks for
    types = tensor_types(mixed_proto)
    norms = [n for n in mixed_proto.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 15
    assert all(types[n.input[0]] == onnx.TensorProto.FLOAT and types[n.output[0]] == onnx.TensorProto.FLOAT
               for n in norms)
    assert io_dtype(mixed_proto) == "float32"
    onnx.checker.check_model(mixed_proto, full_check=True)


def test_naive_graph_has_fp16_instancenorm(fp32_proto):
    naive = to_naive_fp16(fp32_proto)
    assert len(fp16_normalisation_nodes(naive)) == 15


def test_mixed_psnr_normal_and_stressed(mixed_proto, styled_net):
    results = fp16_psnrs(mixed_proto, torch_runner(styled_net), sizes=((13, 11),), scales=(1.0, STRESS_SCALE))
    assert len(results) == 2
    assert all(p >= MIN_PSNR_DB for _, _, p in results), results


def test_naive_conversion_fails_the_check(fp32_proto, styled_net):
    naive = to_naive_fp16(fp32_proto)
    (_, _, p_stress), = fp16_psnrs(naive, torch_runner(styled_net), sizes=((16, 24),), scales=(STRESS_SCALE,))
    assert p_stress < MIN_PSNR_DB  # FP16 variance overflows: the check must catch it
    with pytest.raises(StylizeError, match="normalisation runs in FP16"):
        check_fp16(naive, torch_runner(styled_net), VerifyReport("naive"), sizes=((13, 11),))


def test_fp16_io(fp32_proto):
    proto = to_mixed_fp16(fp32_proto, fp16_io=True)
    assert io_dtype(proto) == "float16"
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert fp16_normalisation_nodes(proto) == []
    out = ort_runner(proto)(sample_input((1, 3, 21, 30)))
    assert out.shape == (1, 3, 21, 30) and np.isfinite(out).all()


def test_deduplicated_initializers_are_inlined(make_net, make_meta):
    # A freshly initialised net has equal InstanceNorm params, which torch turns into Identity nodes.
    import torch
    from stylize_video.export.onnx_export import export_model
    from stylize_video.train.networks import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet().eval()
    proto = export_model(net, make_meta(net))
    assert any(n.op_type == "Identity" for n in proto.graph.node)
    assert not any(n.op_type == "Identity" and n.input[0] in {t.name for t in proto.graph.initializer}
                   for n in inline_identity_initializers(proto).graph.node)
    out = ort_runner(to_mixed_fp16(proto))(sample_input((1, 3, 20, 20)))  # loads: no float16/float clash
    assert out.shape == (1, 3, 20, 20)
