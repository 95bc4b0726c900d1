"""Shared fixtures for the export tests: a seeded TransformerNet with a realistic output range, its
checkpoint and its FP32 / mixed-FP16 ONNX graphs (built once per session: exports take ~0.4 s)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import onnx
import pytest
import torch
from stylize_video.export.fp16 import to_mixed_fp16
from stylize_video.export.metadata import ModelMetadata, weights_sha256
from stylize_video.export.onnx_export import export_model
from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
from stylize_video.train.networks import TransformerNet


def make_styled_net(seed: int = 0) -> TransformerNet:
    """Random TransformerNet whose output spans ~40..200 like a trained one.

    Fresh initialisation gives outputs of about +-1, which makes every PSNR on the 0..255 scale look
    perfect; scaling the last convolution and randomising the norm affines gives a test that can fail.
    """
    torch.manual_seed(seed)
    net = TransformerNet().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        net.deconv3.conv2d.weight.mul_(60.0)
        net.deconv3.conv2d.bias.fill_(127.5)
    return net


def meta_for(net: torch.nn.Module, task: str = "style", scale: int = 1, arch: str = "transformer_net") -> ModelMetadata:
    return ModelMetadata(task=task, scale=scale, arch=arch, weights_sha256=weights_sha256(net.state_dict()))


@pytest.fixture(scope="session")
def styled_net() -> TransformerNet:
    return make_styled_net()


@pytest.fixture(scope="session")
def style_ckpt(styled_net: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "style.pth"
    save_checkpoint(path, styled_net, ModelInfo(arch="transformer_net", task="style", scale=1))
    return path


@pytest.fixture(scope="session")
def fp32_proto(styled_net: TransformerNet) -> onnx.ModelProto:
    return export_model(styled_net, meta_for(styled_net))


@pytest.fixture(scope="session")
def mixed_proto(fp32_proto: onnx.ModelProto) -> onnx.ModelProto:
    return to_mixed_fp16(fp32_proto)


@pytest.fixture(scope="session")
def fp32_onnx_file(fp32_proto: onnx.ModelProto, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "style.onnx"
    onnx.save(fp32_proto, str(path))
    return path


@pytest.fixture(scope="session")
def make_net():
    """The factory itself, for tests that need a second, different network."""
    return make_styled_net


@pytest.fixture(scope="session")
def make_meta():
    return meta_for


class ZooForward(torch.nn.Module):
    """pytorch/examples' forward (no pad-to-multiple-of-4), which is what the zoo exported."""

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        y = n.relu(n.in1(n.conv1(x)))
        y = n.relu(n.in2(n.conv2(y)))
        y = n.relu(n.in3(n.conv3(y)))
        y = n.res5(n.res4(n.res3(n.res2(n.res1(y)))))
        y = n.relu(n.in4(n.deconv1(y)))
        y = n.relu(n.in5(n.deconv2(y)))
        return n.deconv3(y)


@pytest.fixture(scope="session")
def zoo_like(make_net) -> tuple[TransformerNet, bytes]:
    """A random net exported like onnx/models did: legacy exporter, opset 9, fixed 1x3x224x224, input1/output1."""
    net = make_net(3)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ZooForward(net).eval(), (torch.rand(1, 3, 224, 224) * 255,), buf, dynamo=False,
                          opset_version=9, input_names=["input1"], output_names=["output1"])
    return net, buf.getvalue()
