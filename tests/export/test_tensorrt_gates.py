"""TensorRT version dispatch, tested with fake modules exposing the names each real version has
(read with `strings` from tensorrt-cu12-bindings 10.3.0 / 10.13.3.9 and tensorrt-cu13-bindings 11.4.0.106)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from stylize_video import export
from stylize_video.errors import StylizeError
from stylize_video.export import tensorrt as trt_mod


def fake_trt(version: str, *, fp16: bool = True, constraints: bool = True, strongly_typed: bool = True,
             hw_levels: tuple[str, ...] = ("AMPERE_PLUS",)) -> SimpleNamespace:
    flags = {"VERSION_COMPATIBLE": 13}
    if fp16:
        flags["FP16"] = 0
    if constraints:
        flags.update(OBEY_PRECISION_CONSTRAINTS=9, PREFER_PRECISION_CONSTRAINTS=10)
    creation = {"STRONGLY_TYPED": 1} if strongly_typed else {}
    return SimpleNamespace(__version__=version, BuilderFlag=SimpleNamespace(**flags),
                           NetworkDefinitionCreationFlag=SimpleNamespace(**creation),
                           HardwareCompatibilityLevel=SimpleNamespace(**{n: i + 1 for i, n in enumerate(hw_levels)}))


TRT_10_3 = fake_trt("10.3.0")  # JetPack 6
TRT_10_13 = fake_trt("10.13.3.9", hw_levels=("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"))
TRT_11_4 = fake_trt("11.4.0.106", fp16=False, constraints=False, hw_levels=("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"))


@pytest.mark.parametrize("module, mode", [(TRT_10_3, "weak"), (fake_trt("10.11.0"), "weak"),
                                          (fake_trt("10.12.0.36"), "strong"), (TRT_10_13, "strong"),
                                          (TRT_11_4, "strong")])
def test_auto_typing_per_version(module, mode):
    assert trt_mod.typing_mode(module) == mode


def test_requested_typing():
    assert trt_mod.typing_mode(TRT_10_3, "strong") == "strong"  # 10.3 already has STRONGLY_TYPED
    assert trt_mod.typing_mode(TRT_10_13, "weak") == "weak"
    with pytest.raises(StylizeError, match="removed in 11"):
        trt_mod.typing_mode(TRT_11_4, "weak")
    with pytest.raises(StylizeError, match="no strongly typed"):
        trt_mod.typing_mode(fake_trt("10.0.1", strongly_typed=False), "strong")
    with pytest.raises(StylizeError, match="too old"):
        trt_mod.typing_mode(fake_trt("8.6.1"))
    with pytest.raises(StylizeError, match="auto, strong or weak"):
        trt_mod.typing_mode(TRT_10_13, "mixed")


def test_network_flags():
    assert trt_mod.network_flags(TRT_10_13, "strong") == 1 << 1
    assert trt_mod.network_flags(TRT_10_3, "weak") == 0
    assert trt_mod.network_flags(fake_trt("11.9.0", fp16=False, constraints=False, strongly_typed=False), "strong") == 0


def test_precision_constraint_flag():
    assert trt_mod.precision_constraint_flag(TRT_10_3) == 9  # OBEY
    assert trt_mod.precision_constraint_flag(TRT_11_4) is None
    prefer_only = fake_trt("10.1.0")
    del prefer_only.BuilderFlag.OBEY_PRECISION_CONSTRAINTS
    assert trt_mod.precision_constraint_flag(prefer_only) == 10


def test_hardware_compat_level():
    assert trt_mod.hardware_compat_level(TRT_10_3) == 1
    with pytest.raises(StylizeError, match="hardware-compatible"):
        trt_mod.hardware_compat_level(fake_trt("10.0.0", hw_levels=()))


def test_pin_normalisation_layers_weak_typing():
    class Layer:
        def __init__(self, name, type_):
            self.name, self.type, self.num_outputs, self.precision, self.out = name, type_, 1, None, {}

        def set_output_type(self, i, dtype):
            self.out[i] = dtype

    fake = SimpleNamespace(LayerType=SimpleNamespace(NORMALIZATION="norm", CONVOLUTION="conv"), float32="f32")
    layers = [Layer("/conv1/conv2d/Conv", "conv"), Layer("/in1/InstanceNormalization", "norm"),
              Layer("InstanceNormalization_TRT plugin /in2/InstanceNormalization", "plugin")]
    network = SimpleNamespace(num_layers=3, get_layer=layers.__getitem__)
    assert trt_mod._pin_normalisation_fp32(fake, network) == 2
    assert layers[0].precision is None and layers[1].precision == layers[2].precision == "f32"
    assert layers[1].out == {0: "f32"}


def test_exception_tensorrt_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(StylizeError, match="^TensorRT is not installed: pip install tensorrt "):
        trt_mod.load_tensorrt()


def test_only_one_module_imports_tensorrt():
    root = Path(export.__file__).parent
    importers = sorted(p.name for p in root.glob("*.py")
                       if re.search(r"^\s*(import tensorrt|from tensorrt)", p.read_text(), re.MULTILINE))
    assert importers == ["tensorrt.py"]
    # and only lazily: no top-level import statement
    top = [line for line in (root / "tensorrt.py").read_text().splitlines() if line.startswith(("import tensorrt",
                                                                                                 "from tensorrt"))]
    assert top == []
