"""Real TensorRT build + run. Skipped (with the reason) where tensorrt or CUDA is absent, as on the
2-core CPU sandbox this project is developed on; runs wherever both exist."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from export.engine_meta import BuildOptions, read_meta
from export.shapes import ShapeProfile
from export.verify import MIN_PSNR_DB, psnr, sample_input
from train.errors import StylizeError

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

PROFILE = ShapeProfile((32, 32), (64, 96), (128, 160), max_batch=2)


@pytest.fixture(scope="module")
def engines(fp32_onnx_file, tmp_path_factory):
    from export.tensorrt import build_engine

    out = tmp_path_factory.mktemp("plans")
    cache = out / "timing.cache"
    fp32 = build_engine(fp32_onnx_file, out / "fp32.plan", PROFILE,
                        BuildOptions(precision="fp32", timing_cache=str(cache)), log=lambda *_: None)
    fp16 = build_engine(fp32_onnx_file, out / "fp16.plan", PROFILE,
                        BuildOptions(precision="fp16", timing_cache=str(cache)), log=lambda *_: None)
    return out, fp32, fp16, cache


def _reference(net, x):
    with torch.no_grad():  # a copy: the session fixture must stay on the CPU for the other tests
        return copy.deepcopy(net).cuda()(x.cuda()).cpu().numpy()


def test_build_writes_plan_sidecar_and_timing_cache(engines):
    out, _fp32, _fp16, cache = engines
    assert (out / "fp32.plan").stat().st_size > 0 and cache.stat().st_size > 0
    meta = read_meta(out / "fp16.plan")
    assert meta.precision == "fp16" and meta.profile == PROFILE and meta.gpu_name == torch.cuda.get_device_name(0)


@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 45, 67), (1, 3, 128, 160)])
def test_runner_parity(engines, styled_net, shape):
    from export.tensorrt import TensorRTRunner

    out, *_ = engines
    x = torch.from_numpy(sample_input(shape)).cuda()
    ref = _reference(styled_net, x)
    with TensorRTRunner(out / "fp32.plan") as run:
        y32 = run(x).float().cpu().numpy()
    with TensorRTRunner(out / "fp16.plan") as run:
        y16 = run(x).float().cpu().numpy()
    assert y32.shape == shape and psnr(y32, ref) >= 50.0  # TF32 convolutions: not bit-exact
    assert psnr(y16, ref) >= MIN_PSNR_DB


def test_runner_cuda_graph_and_stream(engines, styled_net):
    from export.tensorrt import TensorRTRunner

    out, *_ = engines
    x = torch.from_numpy(sample_input((1, 3, 64, 96))).cuda()
    stream = torch.cuda.Stream()
    with TensorRTRunner(out / "fp16.plan", cuda_graph=True) as run:
        a = run(x, stream=stream)
        b = run(x * 0.5, stream=stream)
        stream.synchronize()
    with TensorRTRunner(out / "fp16.plan") as run:
        c = run(x * 0.5)
    assert not torch.equal(a, b) and torch.allclose(b, c, atol=1e-2)


def test_runner_refuses_shape_outside_profile(engines):
    from export.tensorrt import TensorRTRunner

    out, *_ = engines
    with TensorRTRunner(out / "fp32.plan") as run, pytest.raises(StylizeError, match="stylize-export engine"):
        run(torch.zeros(1, 3, 256, 256, device="cuda"))
