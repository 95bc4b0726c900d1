"""Engine cache: location, keys, get_or_build hit/miss/stale with a fake builder (no TensorRT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stylize_video.errors import StylizeError
from stylize_video.export.engine_cache import cache_root, engine_dir, engine_key, engine_path, get_or_build
from stylize_video.export.engine_meta import BuildOptions, EngineMeta, RuntimeEnv, write_meta
from stylize_video.export.metadata import file_sha256
from stylize_video.export.shapes import ShapeProfile, default_profile

ENV = RuntimeEnv("10.13.3.9", "NVIDIA H100 80GB HBM3", (9, 0))


class FakeBuilder:
    """Writes a plan and its sidecar the way stylize_video.export.tensorrt.build_engine does."""

    def __init__(self, env: RuntimeEnv = ENV) -> None:
        self.calls: list[Path] = []
        self.env = env

    def __call__(self, onnx_path: Path, plan: Path, profile: ShapeProfile, build: BuildOptions) -> EngineMeta:
        self.calls.append(plan)
        plan.write_bytes(b"serialized engine")
        meta = EngineMeta(self.env.tensorrt_version, self.env.gpu_name, self.env.compute_capability, profile,
                          build.precision, "strong", "style", 1, "float32", "float32", file_sha256(onnx_path),
                          str(onnx_path), build)
        write_meta(plan, meta)
        return meta


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "mosaic.onnx"
    path.write_bytes(b"onnx bytes v1")
    return path


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLIZE_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" and engine_dir() == tmp_path / "c" / "engines"
    monkeypatch.delenv("STYLIZE_CACHE")
    assert cache_root() == Path.home() / ".cache" / "stylize-video"


def test_key_has_every_part():
    key = engine_key("0123456789abcdef" * 4, default_profile(), BuildOptions(precision="fp16"), ENV)
    assert key == "0123456789abcdef_64x64-1080x1920-3840x3840_fp16_trt10.13.3.9_nvidia-h100-80gb-hbm3"


@pytest.mark.parametrize("change", [
    {"build": BuildOptions(precision="fp32")},
    {"build": BuildOptions(precision="fp16", fp16_io=True)},
    {"build": BuildOptions(precision="fp16", hardware_compatible=True)},
    {"profile": ShapeProfile((64, 64), (720, 1280), (3840, 3840))},
    {"env": RuntimeEnv("10.3.0", ENV.gpu_name, (9, 0))},
    {"env": RuntimeEnv(ENV.tensorrt_version, "NVIDIA A100-SXM4-40GB", (8, 0))},
    {"sha": "f" * 64},
])
def test_cardinality_key_changes(change):
    base = {"sha": "0" * 64, "profile": default_profile(), "build": BuildOptions(precision="fp16"), "env": ENV}
    new = {**base, **change}
    assert engine_key(base["sha"], base["profile"], base["build"], base["env"]) != \
        engine_key(new["sha"], new["profile"], new["build"], new["env"])


def test_get_or_build_builds_once_then_reuses(onnx_file, tmp_path):
    builder = FakeBuilder()
    first = get_or_build(onnx_file, default_profile(), "fp16", env=ENV, builder=builder, root=tmp_path / "eng")
    again = get_or_build(onnx_file, default_profile(), "fp16", env=ENV, builder=builder, root=tmp_path / "eng")
    assert first == again and len(builder.calls) == 1 and first.name.startswith("mosaic_")
    assert first == engine_path(onnx_file, default_profile(), BuildOptions(precision="fp16"), ENV, tmp_path / "eng")


def test_get_or_build_rebuilds_changed_onnx_and_stale_entries(onnx_file, tmp_path):
    builder = FakeBuilder()
    a = get_or_build(onnx_file, default_profile(), "fp16", env=ENV, builder=builder, root=tmp_path)
    onnx_file.write_bytes(b"onnx bytes v2")  # new weights -> new key
    b = get_or_build(onnx_file, default_profile(), "fp16", env=ENV, builder=builder, root=tmp_path)
    assert a != b and len(builder.calls) == 2
    (b.with_name(b.name + ".json")).unlink()  # damaged entry -> rebuilt in place
    assert get_or_build(onnx_file, default_profile(), "fp16", env=ENV, builder=builder, root=tmp_path) == b
    assert len(builder.calls) == 3


def test_exception_inputs(tmp_path, onnx_file):
    with pytest.raises(StylizeError, match="not found"):
        get_or_build(tmp_path / "missing.onnx", default_profile(), env=ENV, builder=FakeBuilder(), root=tmp_path)
    with pytest.raises(StylizeError, match="precision"):
        get_or_build(onnx_file, default_profile(), "int8", env=ENV, builder=FakeBuilder(), root=tmp_path)
    with pytest.raises(StylizeError, match="was not written"):
        get_or_build(onnx_file, default_profile(), env=ENV, builder=lambda *a: None, root=tmp_path)
