"""Engine sidecar: round trip and every refusal (other GPU, other TensorRT, shape, missing/broken JSON),
each message carrying the exact rebuild command. No TensorRT needed."""

from __future__ import annotations

import json
import shlex

import pytest
from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import (
    BuildOptions,
    EngineMeta,
    RuntimeEnv,
    check_compatible,
    engine_command,
    read_meta,
    sidecar_path,
    write_meta,
)
from stylize_video.export.shapes import ShapeProfile

H100 = RuntimeEnv("10.13.3.9", "NVIDIA H100 80GB HBM3", (9, 0))


def make_meta(**build) -> EngineMeta:
    return EngineMeta(tensorrt_version="10.13.3.9", gpu_name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0),
                      profile=ShapeProfile((64, 64), (1080, 1920), (2160, 3840)), precision="fp16", typing="strong",
                      task="style", scale=1, input_dtype="float32", output_dtype="float32", onnx_sha256="ab" * 32,
                      onnx_path="models/mosaic.onnx", build=BuildOptions(precision="fp16", **build))


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "mosaic.plan"
    path.write_bytes(b"plan")
    return path


def test_round_trip(plan):
    meta = make_meta(workspace_mib=2048, builder_optimization_level=4, timing_cache="t.cache")
    assert write_meta(plan, meta) == sidecar_path(plan) == plan.with_name("mosaic.plan.json")
    back = read_meta(plan)
    assert back == meta
    assert json.loads(sidecar_path(plan).read_text())["gpu_name"] == "NVIDIA H100 80GB HBM3"
    check_compatible(back, H100, plan, (1, 3, 1080, 1920))  # same machine, shape inside: accepted


def test_rebuild_command_is_exact(plan):
    cmd = make_meta(fp16_io=True, workspace_mib=1024, version_compatible=True).rebuild_command(plan)
    assert shlex.split(cmd) == ["stylize-export", "engine", "models/mosaic.onnx", str(plan), "--fp16", "--fp16-io",
                                "--min-shape", "64x64", "--opt-shape", "1080x1920", "--max-shape", "2160x3840",
                                "--workspace", "1024", "--version-compatible"]


def test_refuses_other_gpu(plan):
    other = RuntimeEnv("10.13.3.9", "NVIDIA GeForce RTX 4090", (8, 9))
    with pytest.raises(StylizeError) as err:
        check_compatible(make_meta(), other, plan)
    msg = str(err.value)
    assert "NVIDIA H100" in msg and "RTX 4090" in msg and make_meta().rebuild_command(plan) in msg


def test_refuses_other_tensorrt(plan):
    with pytest.raises(StylizeError, match=r"TensorRT 10\.13\.3\.9, this machine has TensorRT 10\.3\.0") as err:
        check_compatible(make_meta(), RuntimeEnv("10.3.0", H100.gpu_name, (9, 0)), plan)
    assert "stylize-export engine models/mosaic.onnx" in str(err.value)


def test_refuses_shape_outside_profile_with_widened_command(plan):
    with pytest.raises(StylizeError, match="outside the shape profile") as err:
        check_compatible(make_meta(), H100, plan, (1, 3, 3840, 2160))  # portrait 4K
    assert "--max-shape 3840x3840" in str(err.value)


def test_refuses_missing_and_broken_sidecar(plan):
    with pytest.raises(StylizeError, match="metadata .* is missing") as err:
        read_meta(plan)
    assert f"stylize-export engine MODEL.onnx {plan} --fp16" in str(err.value)
    plan.with_suffix(".onnx").write_bytes(b"x")  # a sibling ONNX becomes the suggested source
    sidecar_path(plan).write_text("{not json")
    with pytest.raises(StylizeError, match="unreadable") as err:
        read_meta(plan)
    assert f"stylize-export engine {plan.with_suffix('.onnx')} {plan}" in str(err.value)


def test_hardware_compatible_accepts_other_ampere_refuses_turing(plan):
    meta = make_meta(hardware_compatible=True)
    check_compatible(meta, RuntimeEnv("10.13.3.9", "NVIDIA A10", (8, 6)), plan)
    with pytest.raises(StylizeError, match="Ampere or newer") as err:
        check_compatible(meta, RuntimeEnv("10.13.3.9", "Tesla T4", (7, 5)), plan)
    assert "--hardware-compatible" in str(err.value)


def test_version_compatible_accepts_newer_refuses_older(plan):
    meta = make_meta(version_compatible=True)
    check_compatible(meta, RuntimeEnv("11.4.0.106", H100.gpu_name, (9, 0)), plan)
    with pytest.raises(StylizeError, match="TensorRT >= 10.13.3.9"):
        check_compatible(meta, RuntimeEnv("10.3.0", H100.gpu_name, (9, 0)), plan)


def test_exception_unknown_format(plan):
    data = json.loads(make_meta().to_json())
    data["format"] = "something-else/9"
    sidecar_path(plan).write_text(json.dumps(data))
    with pytest.raises(StylizeError, match="unknown engine metadata format"):
        read_meta(plan)


def test_engine_command_static_and_typing():
    cmd = engine_command("a b.onnx", "o.plan", ShapeProfile((720, 1280), (720, 1280), (720, 1280)),
                         BuildOptions(precision="fp32", typing="weak", hardware_compatible=True))
    assert shlex.split(cmd) == ["stylize-export", "engine", "a b.onnx", "o.plan", "--static", "720x1280",
                                "--hardware-compatible", "--typing", "weak"]


def test_sidecar_carries_size_rules_and_convention(plan):
    from stylize_video.sizerules import SizeRules

    meta = make_meta()
    meta.size_rules = SizeRules(minimum=16, multiple_of=8).to_dict()
    write_meta(plan, meta)
    back = read_meta(plan)
    assert (back.value_range, back.layout, back.channel_order) == ("0-255", "NCHW", "RGB")
    # the network's rules, plus the profile's minimum side (64): small frames are padded up to the profile
    assert back.input_size_rules() == SizeRules(minimum=64, multiple_of=8)
    # sidecars written before these fields existed still load, with "any size" rules
    data = json.loads(sidecar_path(plan).read_text())
    for key in ("size_rules", "value_range", "layout", "channel_order"):
        data.pop(key)
    sidecar_path(plan).write_text(json.dumps(data))
    assert read_meta(plan).input_size_rules() == SizeRules(minimum=64)


def test_static_engine_is_a_fixed_input_size():
    # --static 720x1280: smaller frames are padded to it, larger ones need --tile (square static engines)
    from dataclasses import replace

    from stylize_video.sizerules import SizeRules

    meta = replace(make_meta(), profile=ShapeProfile((720, 1280), (720, 1280), (720, 1280)))
    meta.size_rules = SizeRules(multiple_of=4).to_dict()
    rules = meta.input_size_rules()
    assert rules.fixed == (720, 1280) and rules.padded(480, 640) == (720, 1280)
    assert SizeRules.from_dict(rules.to_dict()) == rules
