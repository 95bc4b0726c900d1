"""The embeddable API: numpy and torch frames, batches, layouts, devices, errors, lifetime, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.pipeline.stylizer import FrameError, Stylizer


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


class TestNumpy:
    def test_smoke(self, negate, frame):
        with Stylizer(negate()) as s:
            out = s(frame)
        assert out.dtype == np.uint8 and out.shape == frame.shape and out.flags.c_contiguous
        np.testing.assert_array_equal(out, 255 - frame)

    @pytest.mark.parametrize("n", [1, 3])
    def test_cardinality_batch(self, negate, frame, n):
        batch = np.stack([frame] * n)
        out = Stylizer(negate())(batch)
        assert out.shape == (n, 6, 10, 3)
        np.testing.assert_array_equal(out, 255 - batch)

    def test_scale_and_non_contiguous(self, negate, frame):
        view = np.ascontiguousarray(np.concatenate([frame, frame], 1))[:, ::2]  # strided view
        out = Stylizer(negate(scale=2))(view)
        assert out.shape == (12, 20, 3)
        np.testing.assert_array_equal(out[::2, ::2], 255 - view)

    @pytest.mark.parametrize(("bad", "match"), [
        (np.zeros((6, 10, 3), np.float32), "must be uint8"),
        (np.zeros((6, 10, 4), np.uint8), r"3 channels last.*drop alpha"),
        (np.zeros((6, 10), np.uint8), r"\(H, W, 3\) or \(N, H, W, 3\)"),
        (np.zeros((3, 6, 10), np.uint8), "3 channels last"),
        (np.zeros((0, 6, 10, 3), np.uint8), "empty"),
    ])
    def test_exception(self, negate, bad, match):
        with pytest.raises(FrameError, match=match):
            Stylizer(negate())(bad)

    def test_errors_are_value_errors_and_stylize_errors(self, negate):
        with pytest.raises(ValueError):
            Stylizer(negate())([[1, 2, 3]])
        with pytest.raises(StylizeError, match="numpy arrays or torch tensors"):
            Stylizer(negate())([[1, 2, 3]])


class TestTorch:
    @pytest.mark.parametrize(("shape", "layout"), [
        ((3, 6, 10), "chw"), ((6, 10, 3), "hwc"), ((2, 3, 6, 10), "chw"), ((2, 6, 10, 3), "hwc")])
    def test_layouts_roundtrip(self, negate, shape, layout):
        x = torch.randint(0, 256, shape, dtype=torch.uint8)
        out = Stylizer(negate())(x)
        assert out.shape == x.shape and out.dtype == torch.uint8 and out.device == x.device
        torch.testing.assert_close(out, 255 - x)

    def test_float_stays_float_and_clamped(self, negate):
        x = torch.tensor([[[-10.0, 100.5]], [[0.0, 255.0]], [[300.0, 1.0]]])  # (3, 1, 2)
        out = Stylizer(negate())(x)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, (255 - x).clamp(0, 255))

    def test_float64_is_float_too(self, negate):
        x = torch.tensor([[[-10.0, 100.5]], [[0.0, 255.0]], [[300.0, 1.0]]], dtype=torch.float64)
        out = Stylizer(negate())(x)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, (255 - x).clamp(0, 255))

    def test_forced_layout_and_scale(self, negate):
        x = torch.zeros(3, 4, 3, dtype=torch.uint8)  # ambiguous: CHW by default
        assert Stylizer(negate())(x).shape == (3, 4, 3)
        out = Stylizer(negate(scale=2))(x, layout="hwc")
        assert out.shape == (6, 8, 3)

    @pytest.mark.parametrize(("bad", "match"), [
        (torch.zeros(6, 10, 3, dtype=torch.int32), "uint8 or float"),
        (torch.zeros(4, 6, 10), "3 channels in dim -3"),
        (torch.zeros(10, 3), "3-D .* or 4-D"),
    ])
    def test_exception(self, negate, bad, match):
        with pytest.raises(FrameError, match=match):
            Stylizer(negate())(bad)

    def test_bad_layout_argument(self, negate):
        with pytest.raises(FrameError, match="layout must be"):
            Stylizer(negate())(torch.zeros(3, 4, 4), layout="nhwc")
        with pytest.raises(FrameError, match="always HWC"):
            Stylizer(negate())(np.zeros((4, 4, 3), np.uint8), layout="chw")

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
    def test_cuda_tensor_stays_on_gpu(self, negate):
        x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, device="cuda")
        out = Stylizer(negate())(x)  # backend on CPU: computed there, returned to the input's device
        assert out.device == x.device
        torch.testing.assert_close(out, 255 - x)


class TestLifetime:
    def test_close_is_idempotent_and_final(self, negate, frame):
        backend = negate()
        with Stylizer(backend) as s:
            s(frame)
        s.close()
        assert backend.closed == 1
        with pytest.raises(StylizeError, match="closed"):
            s(frame)
        assert "closed" in repr(s)

    def test_properties(self, negate):
        s = Stylizer(negate(scale=2))
        assert (s.name, s.device.type, s.precision, s.scale) == ("negate", "cpu", "fp32", 2)

    def test_calls_from_threads_are_serialised(self, negate, frame):
        """The backend raises if entered twice at once; 4 threads x 10 calls must all succeed."""
        s = Stylizer(negate(delay_s=0.001))
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    np.testing.assert_array_equal(s(frame), 255 - frame)
            except BaseException as exc:  # noqa: BLE001 - reported in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors and s.backend.calls == 40


def _negate_onnx(path) -> None:
    """A hand-built ONNX graph y = 255 - x on (N, 3, H, W) float: no exporter involved."""
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])
    c = helper.make_tensor("c255", TensorProto.FLOAT, [], [255.0])
    graph = helper.make_graph([helper.make_node("Sub", ["c255", "input"], ["output"])], "negate", [x], [y], [c])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_load_onnx(tmp_path, frame):
    pytest.importorskip("onnxruntime", reason="onnxruntime (extra [cpu] or [gpu]) is not installed")
    path = tmp_path / "negate.onnx"
    _negate_onnx(path)
    with Stylizer.load(path, device="cpu") as s:
        np.testing.assert_array_equal(s(frame), 255 - frame)
        out = s(torch.from_numpy(frame).permute(2, 0, 1).float())
        torch.testing.assert_close(out, 255 - torch.from_numpy(frame).permute(2, 0, 1).float())
        assert s.scale == 1 and s.name.startswith("onnxruntime")


def test_load_checkpoint(tmp_path, frame):
    """``Stylizer.load`` on one of our checkpoints (random weights, as asked for a smoke test)."""
    from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
    from stylize_video.train.networks import build_network

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "style.pth", build_network("transformer_net"),
                           ModelInfo(arch="transformer_net", task="style", scale=1))
    with Stylizer.load(path, backend="torch", device="cpu") as s:
        out = s(frame)
        assert s.scale == 1 and s.device.type == "cpu" and s.precision == "fp32"  # None -> fp32 on the CPU
    assert out.shape == frame.shape and out.dtype == np.uint8


class TestMatchHistogram:
    """``Stylizer(..., match_histogram=True)``: the SR post-process of the pipeline's --match-histogram."""

    def test_undoes_a_monotone_distortion_of_an_sr_output(self, frame):
        from stylize_video.pipeline.backends.torch import TorchBackend

        class WashedOutUpscale(torch.nn.Module):  # x2 nearest, then low contrast and a colour cast
            scale = 2

            def forward(self, x):
                cast = torch.tensor([40.0, 10.0, -20.0]).view(1, 3, 1, 1)
                return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") * 0.5 + 64 + cast

        plain = Stylizer(TorchBackend(WashedOutUpscale(), "cpu", "fp32"))(frame)
        matched = Stylizer(TorchBackend(WashedOutUpscale(), "cpu", "fp32"), match_histogram=True)(frame)
        nearest = frame.repeat(2, axis=0).repeat(2, axis=1).astype(int)
        assert matched.shape == (12, 20, 3)
        assert np.abs(matched.astype(int) - nearest).max() <= 1 < np.abs(plain.astype(int) - nearest).max()

    def test_refused_for_a_model_that_keeps_the_size(self, negate):
        with pytest.raises(StylizeError, match="--match-histogram is for super-resolution models"):
            Stylizer(negate(), match_histogram=True)
