"""Real TensorRT build + run. Skipped (with the reason) where tensorrt or CUDA is absent, as on the
2-core CPU sandbox this project is developed on; runs wherever both exist. The first tests pin the
runner's shape / CUDA-graph bookkeeping with a fake execution context and run everywhere."""

from __future__ import annotations

import copy
import importlib.util
from types import SimpleNamespace

import pytest
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.engine_meta import BuildOptions, read_meta
from stylize_video.export.shapes import ShapeProfile
from stylize_video.export.tensorrt import TensorRTRunner
from stylize_video.export.verify import MIN_PSNR_DB, psnr, sample_input

needs_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

PROFILE = ShapeProfile((32, 32), (64, 96), (128, 160), max_batch=2)


class FakeContext:
    """The part of IExecutionContext the shape bookkeeping uses; output = input x2 (an SR engine)."""

    def __init__(self) -> None:
        self.set_calls: list[tuple[int, ...]] = []
        self.shape: tuple[int, ...] | None = None

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.set_calls.append(tuple(shape))
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        n, c, h, w = self.shape  # TensorRT: output shapes are known only after set_input_shape
        return (n, c, 2 * h, 2 * w)


def _fake_runner() -> TensorRTRunner:
    run = TensorRTRunner.__new__(TensorRTRunner)  # no plan file, no tensorrt: bookkeeping only
    run.plan, run.meta = "x.plan", SimpleNamespace(profile=PROFILE)
    run._context, run._shape, run._graph, run._replayed = FakeContext(), None, None, None
    run._engine = run._runtime = object()
    run.device, run.cuda_graph, run.output_dtype = torch.device("cuda", 0), True, torch.float32
    return run


def test_shape_change_sets_shape_once_and_drops_the_captured_graph():
    run = _fake_runner()
    assert run._set_shape((1, 3, 64, 96)) == (1, 3, 128, 192)
    run._graph = ((1, 3, 64, 96), "graph", "in", "out")
    assert run._set_shape((1, 3, 64, 96)) == (1, 3, 128, 192)
    assert run._context.set_calls == [(1, 3, 64, 96)] and run._graph is not None  # same shape: replay stays valid
    run._set_shape((2, 3, 32, 32))
    # A graph holds the context state of its capture; after set_input_shape it must be recaptured.
    assert run._context.set_calls[-1] == (2, 3, 32, 32) and run._graph is None


def test_exit_forgets_shape_so_a_new_context_gets_set_input_shape(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    run = _fake_runner()
    run._set_shape((1, 3, 64, 96))
    run._graph = ((1, 3, 64, 96), "graph", "in", "out")
    run.__exit__(None, None, None)
    assert (run._context, run._engine, run._runtime, run._graph, run._shape) == (None, None, None, None, None)
    run._context = FakeContext()  # what __enter__ creates
    run._set_shape((1, 3, 64, 96))
    assert run._context.set_calls == [(1, 3, 64, 96)]


class _Stream:
    """Records what a CUDA stream is asked to do; no CUDA needed."""

    def __init__(self, log, name):
        self.log, self.name, self.cuda_stream = log, name, id(self)

    def wait_event(self, event):
        self.log.append((self.name, "waits", event.recorded_on))

    def synchronize(self):
        self.log.append((self.name, "sync"))


class _Event:
    def __init__(self):
        self.recorded_on = None

    def record(self, stream):
        self.recorded_on = stream.name


class _Graph:
    def __init__(self, log, static_in):
        self.log, self.static_in = log, static_in

    def replay(self):
        self.log.append(("replay", float(self.static_in.flatten()[0])))


def test_replays_on_two_streams_wait_for_each_other(monkeypatch):
    """The static input is written on the calling stream: it must wait for the replay launched before."""
    log = []
    monkeypatch.setattr(torch.cuda, "Event", _Event)
    run = _fake_runner()
    static_in, static_out = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8)
    run._graph = ((1, 3, 4, 4), _Graph(log, static_in), static_in, static_out)
    a, b = _Stream(log, "a"), _Stream(log, "b")
    run._replay(torch.full((1, 3, 4, 4), 1.0), (1, 3, 8, 8), a)
    run._replay(torch.full((1, 3, 4, 4), 2.0), (1, 3, 8, 8), b)
    assert log == [("replay", 1.0), ("b", "waits", "a"), ("replay", 2.0)]


def test_failed_capture_falls_back_to_plain_enqueue(monkeypatch):
    run = _fake_runner()
    run.device = torch.device("cpu")  # plain enqueue allocates the output here
    enqueued = []
    monkeypatch.setattr(run, "_capture", lambda *a: (_ for _ in ()).throw(RuntimeError("operation not permitted "
                                                                                       "when stream is capturing")))
    monkeypatch.setattr(run, "_enqueue", lambda x, out, stream: enqueued.append(tuple(out.shape)))
    with pytest.warns(UserWarning, match="CUDA graph capture failed"):
        y = run._replay(torch.zeros(1, 3, 4, 4), (1, 3, 8, 8), _Stream([], "s"))
    assert y.shape == (1, 3, 8, 8) and enqueued == [(1, 3, 8, 8)] and run.cuda_graph is False


def test_refused_tensor_address_is_an_error():
    run = _fake_runner()
    run._context.set_tensor_address = lambda name, ptr: name != "output"
    run._context.execute_async_v3 = lambda handle: pytest.fail("enqueued with a refused address")
    with pytest.raises(StylizeError, match="refused the address of 'output'"):
        run._enqueue(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8), _Stream([], "s"))


def test_exit_synchronises_before_the_context_goes(monkeypatch):
    run = _fake_runner()
    seen = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: seen.append(run._context is not None))
    run.__exit__(None, None, None)
    assert seen == [True] and run._context is None


def test_shape_outside_profile_is_refused_before_tensorrt_sees_it():
    run = _fake_runner()
    run.meta = SimpleNamespace(profile=PROFILE, tensorrt_version="10.13.3", gpu_name="g", compute_capability=(9, 0),
                               build=SimpleNamespace(hardware_compatible=False, version_compatible=False),
                               rebuild_command=lambda plan, profile=None: "stylize-export engine ...")
    with pytest.raises(StylizeError, match="outside the shape profile.*stylize-export engine"):
        run._set_shape((1, 3, 256, 256))
    assert run._context.set_calls == []


@pytest.fixture(scope="module")
def engines(fp32_onnx_file, tmp_path_factory):
    from stylize_video.export.tensorrt import build_engine

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


@needs_tensorrt
@needs_cuda
def test_build_writes_plan_sidecar_and_timing_cache(engines):
    out, _fp32, _fp16, cache = engines
    assert (out / "fp32.plan").stat().st_size > 0 and cache.stat().st_size > 0
    meta = read_meta(out / "fp16.plan")
    assert meta.precision == "fp16" and meta.profile == PROFILE and meta.gpu_name == torch.cuda.get_device_name(0)


@needs_tensorrt
@needs_cuda
@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 45, 67), (1, 3, 128, 160)])
def test_runner_parity(engines, styled_net, shape):
    from stylize_video.export.tensorrt import TensorRTRunner

    out, *_ = engines
    x = torch.from_numpy(sample_input(shape)).cuda()
    ref = _reference(styled_net, x)
    with TensorRTRunner(out / "fp32.plan") as run:
        y32 = run(x).float().cpu().numpy()
    with TensorRTRunner(out / "fp16.plan") as run:
        y16 = run(x).float().cpu().numpy()
    assert y32.shape == shape and psnr(y32, ref) >= 50.0  # TF32 convolutions: not bit-exact
    assert psnr(y16, ref) >= MIN_PSNR_DB


@needs_tensorrt
@needs_cuda
def test_runner_cuda_graph_and_stream(engines):
    out, *_ = engines
    x = torch.from_numpy(sample_input((1, 3, 64, 96))).cuda()
    small = torch.from_numpy(sample_input((1, 3, 32, 48))).cuda()
    stream = torch.cuda.Stream()
    with TensorRTRunner(out / "fp16.plan", cuda_graph=True) as run:
        a = run(x, stream=stream)
        b = run(x * 0.5, stream=stream)  # x * 0.5 is queued on the default stream: the runner must wait for it
        s = run(small, stream=stream)  # new shape: set_input_shape, recapture
        b2 = run(x * 0.5, stream=stream)  # back again: recaptured, not the graph of the old context state
        stream.synchronize()
    with TensorRTRunner(out / "fp16.plan") as run:
        c, sc = run(x * 0.5), run(small)
    assert not torch.equal(a, b) and s.shape[-2:] == small.shape[-2:]
    for got, want in ((b, c), (b2, c), (s, sc)):
        assert torch.allclose(got.float(), want.float(), atol=1e-2, rtol=1e-3)


@needs_tensorrt
@needs_cuda
def test_runner_refuses_shape_outside_profile(engines):
    from stylize_video.export.tensorrt import TensorRTRunner

    out, *_ = engines
    with TensorRTRunner(out / "fp32.plan") as run, pytest.raises(StylizeError, match="stylize-export engine"):
        run(torch.zeros(1, 3, 256, 256, device="cuda"))
