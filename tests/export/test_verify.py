"""The verification layer: structure checks, parity, PSNR, report lines, and that each check can fail."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.verify import (
    VerifyReport,
    check_fp16_model,
    check_fp32_model,
    check_parity,
    check_structure,
    psnr,
    sample_input,
    torch_runner,
)
from stylize_video.sizerules import SizeRules


def test_psnr_values():
    ref = np.zeros((1, 3, 4, 4), np.float32)
    assert psnr(ref, ref) == math.inf
    assert psnr(ref + 255.0, ref) == pytest.approx(0.0)
    assert psnr(ref + 2.55, ref) == pytest.approx(40.0)
    assert psnr(np.full_like(ref, np.nan), ref) == -math.inf


def test_sample_input_range_and_determinism():
    a, b = sample_input((2, 3, 9, 7)), sample_input((2, 3, 9, 7))
    assert a.dtype == np.float32 and a.shape == (2, 3, 9, 7) and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 255.0
    assert sample_input((1, 3, 4, 4), scale=8.0).max() > 255.0


def test_smoke_fp32_report(fp32_proto, styled_net):
    report = VerifyReport("m.onnx")
    check_fp32_model(fp32_proto, torch_runner(styled_net), 1, report)
    assert len(report.parity) == 2 and all(err <= 0.05 for _, err in report.parity)
    text = "\n".join(report.lines())
    assert "full_check=True" in text and "max abs error" in text and "dynamic batch/height/width" in text


def test_fp16_report_without_reference_still_asserts_norms(mixed_proto):
    report = VerifyReport("m16.onnx")
    check_fp16_model(mixed_proto, None, 1, report)
    assert report.psnr == [] and any("no FP16 InstanceNormalization" in c for c in report.checks)


def test_exception_parity_bites(fp32_proto, styled_net):
    ref = torch_runner(styled_net)
    with pytest.raises(StylizeError, match="max abs error"):
        check_parity(fp32_proto, lambda x: ref(x) + 0.1, VerifyReport("m.onnx"))


def test_exception_static_graph_refused(fp32_proto):
    static = onnx.ModelProto.FromString(fp32_proto.SerializeToString())
    for dim, value in zip(static.graph.input[0].type.tensor_type.shape.dim, (1, 3, 64, 64)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    with pytest.raises(StylizeError, match="dynamic N, H, W"):
        check_structure(static, VerifyReport("static.onnx"))


def test_exception_renamed_io_refused(fp32_proto):
    bad = onnx.ModelProto.FromString(fp32_proto.SerializeToString())
    old = bad.graph.input[0].name
    bad.graph.input[0].name = "input1"
    for node in bad.graph.node:
        node.input[:] = ["input1" if i == old else i for i in node.input]
    with pytest.raises(StylizeError, match="expected one input 'input'"):
        check_structure(bad, VerifyReport("renamed.onnx"))


class _TracedSizeOnly(torch.nn.Module):
    """Square multiples of 128 by its size rules (as spandrel's Uformer), but its window reshape is baked in at
    the traced 128x128: the exported graph claims dynamic H/W and runs at that size only."""

    size_rules = SizeRules(minimum=128, multiple_of=128, square=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        windows = x.reshape(n, 3, 128 * 128)  # shape from constants: fixed at export
        return (windows * 0.5).reshape(n, 3, 128, 128) * 2.0


def test_exception_graph_running_only_at_the_traced_size_refused(capfd):
    from stylize_video.export.metadata import ModelMetadata
    from stylize_video.export.onnx_export import export_model
    from stylize_video.export.verify import sizes_for

    net = _TracedSizeOnly().eval()
    meta = ModelMetadata(task="restoration", scale=1, arch="test:traced-size-only", weights_sha256="0" * 64)
    meta.size_rules = net.size_rules
    proto = export_model(net, meta)
    # Both parity sizes pad to 128x128, the traced size: a second, distinct size is always checked.
    assert sizes_for(proto, ((64, 112), (45, 67))) == [(128, 128), (256, 256)]
    with pytest.raises(StylizeError) as exc:
        check_fp32_model(proto, torch_runner(net), 1, VerifyReport("w.onnx"))
    assert str(exc.value).startswith("w.onnx: the graph is not size-dynamic: it runs at 2x3x128x128 but not at "
                                     "2x3x256x256 (onnxruntime: ")
    assert capfd.readouterr().err == ""  # ONNX Runtime's own error log (written by its C++ side) is silenced
