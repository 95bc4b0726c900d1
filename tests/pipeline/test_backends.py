"""stylize_video.pipeline.backends: dispatch by file kind, torch FP16/FP32, ONNX Runtime, TensorRT checks."""

from __future__ import annotations

import copy

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends import load_backend, model_kind
from stylize_video.pipeline.backends.onnxruntime import OnnxRuntimeBackend, metadata_scale
from stylize_video.pipeline.backends.torch import TorchBackend, half_keep_norms_fp32
from stylize_video.train.networks import SRNet, TransformerNet

HAS_CUDA = torch.cuda.is_available()


def _export(model, path, scale_meta=None):
    import onnx

    x = torch.rand(1, 3, 32, 32) * 255
    torch.onnx.export(model.eval(), x, str(path), input_names=["input"], output_names=["output"], opset_version=17,
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "oh", 3: "ow"}},
                      dynamo=False)
    if scale_meta is not None:
        m = onnx.load(str(path))
        e = m.metadata_props.add()
        e.key, e.value = "stylize.scale", str(scale_meta)
        onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    sr = SRNet(scale=2).eval()
    return {"sr_meta": (_export(sr, root / "sr_meta.onnx", scale_meta=2), sr),
            "sr_probe": (_export(sr, root / "sr_probe.onnx"), sr)}


def test_dispatch_checkpoint(checkpoints):
    with load_backend(checkpoints["style"], device="cpu", precision="fp32") as b:
        assert (b.name, b.scale, str(b.device), b.precision) == ("torch", 1, "cpu", "fp32")
        assert b(torch.rand(1, 3, 20, 30) * 255).shape == (1, 3, 20, 30)
    with load_backend(checkpoints["sr"], device="cpu", precision="fp32") as b:
        assert b.scale == 2 and b(torch.rand(1, 3, 10, 12) * 255).shape == (1, 3, 20, 24)


@pytest.mark.parametrize("key", ["sr_meta", "sr_probe"])
def test_onnxruntime_scale_from_metadata_or_probe(onnx_models, key):
    path, model = onnx_models[key]
    with load_backend(path, device="cpu") as b:
        assert isinstance(b.inner, OnnxRuntimeBackend) and b.name == "onnxruntime-cpu" and b.scale == 2
        x = torch.rand(1, 3, 12, 14) * 255
        with torch.no_grad():
            ref = model(x)
        torch.testing.assert_close(b(x), ref, atol=1e-2, rtol=1e-4)


def test_metadata_scale_keys():
    assert metadata_scale({"stylize.scale": "4"}) == 4
    assert metadata_scale({"scale": "2", "other": "x"}) == 2
    assert metadata_scale({"upscale_note": "x", "grayscale": "1"}) is None


def test_fp16_keeps_norms_fp32_and_stays_close():
    torch.manual_seed(0)
    net = TransformerNet().eval()
    half = half_keep_norms_fp32(copy.deepcopy(net))
    assert half.conv1.conv2d.weight.dtype == torch.float16
    assert half.in1.norm.weight.dtype == torch.float32
    x = torch.rand(1, 3, 24, 32) * 255
    ref = TorchBackend(copy.deepcopy(net), "cpu", "fp32")(x)
    out = TorchBackend(copy.deepcopy(net), "cpu", "fp16")(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() <= 0.02 * ref.abs().max() + 0.05


def test_wrong_kinds_and_missing(tmp_path, checkpoints, onnx_models):
    with pytest.raises(StylizeError, match="not found"):
        load_backend(tmp_path / "nope.pth")
    junk = tmp_path / "junk.bin"
    junk.write_text("hello")
    with pytest.raises(StylizeError, match="unknown model file kind") as exc:
        load_backend(junk)
    assert str(exc.value).endswith("(expected a PyTorch checkpoint (.pth, .pt, .ckpt, .model, .safetensors), an "
                                   "ONNX model (.onnx) or a TensorRT engine (.plan, .engine, .trt))")
    pt = tmp_path / "style.pt"  # every suffix offered loads: .pt too
    pt.write_bytes(checkpoints["style"].read_bytes())
    with load_backend(pt, device="cpu", precision="fp32") as backend:
        assert backend.scale == 1
    with pytest.raises(StylizeError, match="cannot run"):
        load_backend(checkpoints["style"], backend="onnxruntime")
    with pytest.raises(StylizeError, match="cannot run"):
        load_backend(onnx_models["sr_meta"][0], backend="torch")
    fake_onnx = tmp_path / "fake.onnx"
    fake_onnx.write_text("not a protobuf")
    with pytest.raises(StylizeError, match="is not an ONNX model"):
        load_backend(fake_onnx, device="cpu")
    fake_pth = tmp_path / "fake.pth"
    fake_pth.write_bytes(b"garbage")
    with pytest.raises(StylizeError, match="not a PyTorch checkpoint"):
        load_backend(fake_pth, device="cpu")
    with pytest.raises(StylizeError, match="--compile applies to the torch backend"):
        load_backend(onnx_models["sr_meta"][0], compile=True)
    with pytest.raises(StylizeError, match="unknown backend"):
        load_backend(checkpoints["style"], backend="openvino")


def test_sniffing_without_suffix(tmp_path, checkpoints):
    blob = tmp_path / "model"
    blob.write_bytes(checkpoints["style"].read_bytes())
    assert model_kind(blob) == "checkpoint"


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only refusal; this machine has CUDA")
def test_cuda_requested_without_cuda(checkpoints):
    with pytest.raises(StylizeError, match="no usable CUDA"):
        load_backend(checkpoints["style"], device="cuda")


# --- TensorRT: the metadata checks run anywhere; the engine itself needs TensorRT + CUDA -------------------------
def _engine_meta(gpu="NVIDIA H100 80GB HBM3", cc=(9, 0), trt="10.13.3"):
    from stylize_video.export.engine_meta import EngineMeta
    from stylize_video.export.shapes import ShapeProfile

    return EngineMeta(tensorrt_version=trt, gpu_name=gpu, compute_capability=cc,
                      profile=ShapeProfile((64, 64), (720, 1280), (1080, 1920)), precision="fp16", typing="strong",
                      task="style", scale=1, input_dtype="float32", output_dtype="float32", onnx_sha256="0" * 64,
                      onnx_path="mosaic.onnx")


def test_engine_without_sidecar_is_refused(tmp_path):
    plan = tmp_path / "mosaic.plan"
    plan.write_bytes(b"\x00" * 64)
    with pytest.raises(StylizeError, match="rebuild it with: stylize-export engine"):
        load_backend(plan)


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only refusal; this machine has CUDA")
def test_engine_on_cpu_machine_points_to_onnx(tmp_path):
    from stylize_video.export.engine_meta import write_meta

    plan = tmp_path / "mosaic.plan"
    plan.write_bytes(b"\x00" * 64)
    write_meta(plan, _engine_meta())
    with pytest.raises(StylizeError, match="needs a CUDA GPU.*--onnx mosaic.onnx"):
        load_backend(plan)


def test_engine_for_another_gpu_names_rebuild_command(tmp_path, monkeypatch):
    import stylize_video.pipeline.backends.tensorrt as ptrt
    from stylize_video.export import tensorrt as ett
    from stylize_video.export.engine_meta import RuntimeEnv, write_meta

    plan = tmp_path / "mosaic.plan"
    plan.write_bytes(b"\x00" * 64)
    write_meta(plan, _engine_meta())
    # Pretend to be an RTX 4090 with the same TensorRT: only the GPU check can fail.
    monkeypatch.setattr(ptrt, "resolve_device", lambda d: torch.device("cuda", 0))
    monkeypatch.setattr(ett, "load_tensorrt", lambda: object())
    monkeypatch.setattr(ett, "probe_env", lambda trt, i=0: RuntimeEnv("10.13.3", "NVIDIA GeForce RTX 4090", (8, 9)))
    with pytest.raises(StylizeError, match=r"built for NVIDIA H100.*RTX 4090.*rebuild it with: stylize-export engine"):
        load_backend(plan)
    monkeypatch.setattr(ett, "probe_env", lambda trt, i=0: RuntimeEnv("10.3.0", "NVIDIA H100 80GB HBM3", (9, 0)))
    with pytest.raises(StylizeError, match=r"TensorRT 10.13.3.*TensorRT 10.3.0.*rebuild"):
        load_backend(plan)


def test_frame_outside_engine_profile():
    from stylize_video.pipeline.backends.tensorrt import check_engine_shape

    meta = _engine_meta()
    check_engine_shape(meta, "mosaic.plan", (1, 3, 720, 1280))
    with pytest.raises(StylizeError, match=r"outside the shape profile.*rebuild it with: stylize-export engine"):
        check_engine_shape(meta, "mosaic.plan", (1, 3, 2160, 3840))


def test_compile_modes(checkpoints):
    from stylize_video.pipeline.backends.torch import COMPILE_MODES, compile_mode
    from stylize_video.pipeline.cli import COMPILE_MODE_CHOICES

    assert COMPILE_MODE_CHOICES == COMPILE_MODES  # the CLI's copy (kept torch-free for --help)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [compile_mode(False, cuda), compile_mode(True, cuda), compile_mode(True, cpu)] == [None, "max-autotune",
                                                                                             "default"]
    assert compile_mode("reduce-overhead", cuda) == "reduce-overhead"
    with pytest.raises(StylizeError, match="--compile-mode must be one of max-autotune, reduce-overhead"):
        load_backend(checkpoints["style"], device="cpu", precision="fp32", compile="fastest")


@pytest.mark.parametrize(("flags", "expect"), [([], False), (["--compile"], True),
                                              (["--compile-mode", "reduce-overhead"], "reduce-overhead")])
def test_cli_compile_flags_reach_the_loader(tmp_path, checkpoints, monkeypatch, flags, expect):
    from stylize_video.pipeline import backends as pipeline_backends
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    seen = []

    def refuse(*args, **kw):
        seen.append(args[4])  # load_backend(model, backend, device, precision, compile)
        raise StylizeError("stop here")

    monkeypatch.setattr(pipeline_backends, "load_backend", refuse)
    clip = make_test_clip(tmp_path / "in.mp4", frames=1, audio=False)
    assert main([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", str(checkpoints["style"]), *flags]) == 1
    assert seen == [expect]


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_torch_cuda_fp16_and_compile(checkpoints):
    x = torch.rand(1, 3, 64, 64, device="cuda") * 255
    ref = load_backend(checkpoints["style"], device="cuda", precision="fp32")(x)
    half = load_backend(checkpoints["style"], device="cuda", precision="fp16")(x)
    assert (half - ref).abs().max() <= 0.02 * ref.abs().max() + 0.5
    # reduce-overhead: the same CUDA-graph path as the default max-autotune without minutes of autotuning
    # (device time is scarce); max-autotune itself runs in benchmarks/run_gpu.sh's full mode.
    comp = load_backend(checkpoints["style"], device="cuda", precision="fp16", compile="reduce-overhead")
    assert comp.name == "torch-compile" and comp.compile_mode == "reduce-overhead"
    torch.testing.assert_close(comp(x), half, atol=1.0, rtol=0.02)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and onnxruntime-gpu")
def test_onnxruntime_cuda_iobinding(onnx_models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    path, model = onnx_models["sr_meta"]
    with load_backend(path, device="cuda", precision="fp32") as b:
        x = torch.rand(1, 3, 16, 16, device="cuda") * 255
        y = b(x)
        assert y.is_cuda and y.shape == (1, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(y.cpu(), model(x.cpu()), atol=0.5, rtol=1e-3)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and TensorRT")
def test_tensorrt_engine_end_to_end(tmp_path, onnx_models):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from stylize_video.export.engine_meta import BuildOptions
    from stylize_video.export.metadata import ModelMetadata, weights_sha256
    from stylize_video.export.onnx_export import export_model, save_atomic
    from stylize_video.export.shapes import ShapeProfile
    from stylize_video.export.tensorrt import build_engine

    torch.manual_seed(0)
    net = SRNet(scale=2).eval()
    meta = ModelMetadata(task="sr", scale=2, arch="sr_net", weights_sha256=weights_sha256(net.state_dict()))
    onnx_path = save_atomic(export_model(net, meta), tmp_path / "sr.onnx")
    plan = tmp_path / "sr.plan"
    build_engine(onnx_path, plan, ShapeProfile((16, 16), (32, 32), (64, 64)), BuildOptions(precision="fp32"))
    with load_backend(plan, device="cuda") as b:
        assert b.name == "tensorrt" and b.scale == 2
        assert b(torch.rand(1, 3, 32, 32, device="cuda") * 255).shape == (1, 3, 64, 64)


def test_provider_lists_pin_and_keep_fp32_strict(tmp_path):
    from stylize_video.pipeline.backends.onnxruntime import providers_for

    gpu, cpu = torch.device("cuda", 0), torch.device("cpu")
    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    best = providers_for(gpu, "fp32", every, tmp_path)
    assert [p if isinstance(p, str) else p[0] for p in best] == every
    cuda_opts = dict(best[1][1])
    assert cuda_opts["use_tf32"] == 0  # FP32 rows must not silently run TF32 convolutions
    pinned = providers_for(gpu, "fp16", every, tmp_path, only="cuda")
    assert [p[0] for p in pinned] == ["CUDAExecutionProvider"] and pinned[0][1]["use_tf32"] == 1
    assert providers_for(cpu, "fp32", every, tmp_path, only="cpu") == ["CPUExecutionProvider"]
    for only, device, avail, msg in [("rocm", gpu, every, "unknown onnxruntime provider"),
                                     ("cuda", cpu, every, "does not run on device cpu"),
                                     ("tensorrt", gpu, every[1:], "has no TensorrtExecutionProvider")]:
        with pytest.raises(StylizeError, match=msg):
            providers_for(device, "fp32", avail, tmp_path, only=only)


def test_trt_ep_engine_caches_are_kept_apart_per_precision(tmp_path):
    from stylize_video.pipeline.backends.onnxruntime import providers_for

    # The TensorRT EP names cached engines after the model only: an FP32 engine must not be reused for FP16.
    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    gpu = torch.device("cuda", 0)
    paths = {p: providers_for(gpu, p, every, tmp_path)[0][1]["trt_engine_cache_path"] for p in ("fp16", "fp32")}
    assert paths["fp16"] != paths["fp32"]
