"""stylize_video.pipeline.backends.ort_gpu: ORT on its own CUDA stream without host syncs; TensorRT EP profiles.

The CUDA parts are checked on the CPU with fakes that record the order of stream waits and runs
(and refuse any synchronize); the real thing runs where onnxruntime-gpu and a GPU exist.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stylize_video.export.shapes import ShapeProfile
from stylize_video.pipeline.backends import ort_gpu
from stylize_video.pipeline.backends.onnxruntime import providers_for


class _Stream:
    def __init__(self, name, log, handle=0):
        self.name, self.log, self.cuda_stream = name, log, handle

    def wait_stream(self, other):
        self.log.append(f"{self.name} waits {other.name}")

    def synchronize(self):
        raise AssertionError("a host sync on the ORT path")


class _Session:
    def __init__(self, log):
        self.log = log

    def run_with_iobinding(self, binding, run_options=None):
        assert run_options is not None and run_options.get_run_config_entry(ort_gpu.DISABLE_SYNC_KEY) == "1"
        self.log.append("run")


def test_run_is_ordered_by_stream_waits_only():
    log = []
    runner = ort_gpu.OrtCudaRunner(torch.device("cuda", 0), stream=_Stream("ort", log, handle=0x7F00))
    runner.run(_Session(log), object(), _Stream("caller", log))
    assert log == ["ort waits caller", "run", "caller waits ort"]
    assert runner.provider_options == {"has_user_compute_stream": "1", "user_compute_stream": str(0x7F00)}


def test_default_stream_cannot_be_orts_stream():
    with pytest.raises(ValueError, match="stream 0"):  # torch's default stream is handle 0: ORT ignores it
        ort_gpu.stream_options(0)


def test_providers_carry_the_stream_and_the_trt_profile(tmp_path):
    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    profile = ort_gpu.trt_profile_options("input", ShapeProfile((64, 64), (1080, 1920), (3840, 3840)))
    assert profile == {"trt_profile_min_shapes": "input:1x3x64x64", "trt_profile_opt_shapes": "input:1x3x1080x1920",
                       "trt_profile_max_shapes": "input:1x3x3840x3840"}
    stream = ort_gpu.stream_options(1234)
    trt, cuda, cpu = providers_for(torch.device("cuda", 0), "fp16", every, tmp_path, stream=stream,
                                   trt_profile=profile)
    assert trt[0] == "TensorrtExecutionProvider" and cuda[0] == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"
    assert {**profile, **stream}.items() <= trt[1].items() and stream.items() <= cuda[1].items()
    assert "trt_fp16_enable" not in trt[1]  # FP16 comes from the graph (TensorRT 11 has no such flag)


def test_profile_and_fp16_graph_from_the_export_stage(tmp_path):
    import onnxruntime as ort
    from stylize_video.export.fp16 import is_fp16_graph
    from stylize_video.export.metadata import ModelMetadata, weights_sha256
    from stylize_video.export.onnx_export import export_model, save_atomic
    from stylize_video.export.shapes import default_profile
    from stylize_video.train.networks import SRNet

    torch.manual_seed(0)
    net = SRNet(scale=2).eval()
    meta = ModelMetadata(task="sr", scale=2, arch="sr_net", weights_sha256=weights_sha256(net.state_dict()))
    path = save_atomic(export_model(net, meta), tmp_path / "sr.onnx")
    name, profile, fp16 = ort_gpu.onnx_input_and_profile(path)
    assert (profile, fp16) == (default_profile("sr", 2), False) and name
    mixed = ort_gpu.mixed_fp16_model(path)
    import onnx

    assert is_fp16_graph(onnx.load_from_string(mixed))
    x = (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 255).numpy()
    run = lambda m: ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {name: x})[0]
    ref, half = run(str(path)), run(mixed)
    assert half.dtype == np.float32 and np.abs(half - ref).max() < 0.02 * np.abs(ref).max() + 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU and onnxruntime-gpu")
def test_onnxruntime_cuda_on_a_side_stream_without_syncs(tmp_path):
    """Called from the processor's own stream, as the frame path does: values must match the CPU run."""
    import onnxruntime as ort
    from stylize_video.pipeline.backends import load_backend

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1)).eval()
    path = tmp_path / "c.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "h", 3: "w"}}, dynamo=False)
    with load_backend(path, device="cuda", precision="fp32", ort_provider="cuda") as b:
        side = torch.cuda.Stream()
        xs = [torch.rand(1, 3, 64, 48, device="cuda") * 255 for _ in range(3)]
        with torch.cuda.stream(side):
            ys = [b(x) for x in xs]
        torch.cuda.synchronize()
        with torch.no_grad():
            for x, y in zip(xs, ys):
                torch.testing.assert_close(y.cpu(), net(x.cpu()), atol=1e-2, rtol=1e-4)
