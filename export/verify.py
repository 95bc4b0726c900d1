"""Checks run on every export and by ``stylize-export verify``.

* structure: ``onnx.checker.check_model(full_check=True)``, strict shape inference, I/O names,
  opset, dynamic N/H/W, our metadata;
* FP32 parity: onnxruntime CPU vs PyTorch at a non-square size and a size that is not a multiple of 4,
  max abs error <= 0.05 on the 0..255 scale;
* FP16: PSNR >= 45 dB against FP32, at normal range and on an input scaled up ("stress") so that a graph
  with FP16 InstanceNormalization overflows; plus "no FP16 normalisation node".

FP16 runs use ``onnx.reference.ReferenceEvaluator`` (numpy float16 arithmetic): onnxruntime's CPU
provider has no FP16 kernels for these ops and silently inserts Casts to FP32, so it cannot show an
FP16 overflow (measured here: all-FP16 and mixed graphs give identical ORT outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from stylize_video.errors import StylizeError
from stylize_video.export.fp16 import fp16_normalisation_nodes, is_fp16_graph
from stylize_video.export.metadata import read_metadata
from stylize_video.export.onnx_export import INPUT_NAME, MIN_OPSET, OUTPUT_NAME
from torch import nn

MAX_ABS_ERROR = 0.05  # FP32 ONNX vs PyTorch, 0..255 scale
MIN_PSNR_DB = 45.0  # FP16 vs FP32, peak 255
PARITY_SIZES: tuple[tuple[int, int], ...] = ((64, 112), (45, 67))  # non-square; not a multiple of 4
FP16_SIZES: tuple[tuple[int, int], ...] = ((16, 24), (13, 11))  # small: the reference evaluator is numpy
STRESS_SCALE = 8.0  # input x8 (0..2040): pushes pre-norm activations past FP16's sqrt(65504) = 256

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class VerifyReport:
    """Figures from one verification; ``lines()`` is what the CLI prints."""

    path: str
    checks: list[str] = field(default_factory=list)
    parity: list[tuple[tuple[int, ...], float]] = field(default_factory=list)  # (shape, max abs err)
    psnr: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)  # (shape, scale, dB)
    naive_psnr: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    def lines(self) -> list[str]:
        out = [f"{self.path}:"] + [f"  ok  {c}" for c in self.checks] + [f"  note {n}" for n in self.notes]
        out += [f"  parity {_shape(s)}: max abs error {e:.2e} (limit {MAX_ABS_ERROR})" for s, e in self.parity]
        out += [f"  fp16 {_shape(s)} x{k:g}: PSNR {_db(p)} vs fp32 (limit {MIN_PSNR_DB:g} dB)" for s, k, p in self.psnr]
        out += [f"  naive fp16 (converter defaults, norms in FP16) {_shape(s)} x{k:g}: PSNR {_db(p)} (for comparison)"
                for s, k, p in self.naive_psnr]
        return out


def _shape(s: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in s)


def _db(p: float) -> str:
    return "inf dB" if math.isinf(p) and p > 0 else ("non-finite output" if math.isinf(p) else f"{p:.1f} dB")


def sample_input(shape: Sequence[int], scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Deterministic test image batch, float32 in 0..255*scale. Smooth gradients plus noise, like photos."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    base = np.stack([yy, xx, 1 - (yy + xx) / 2])[None].repeat(n, 0) * 200.0
    img = np.clip(base + rng.uniform(0, 55, size=(n, c, h, w)), 0, 255)
    return (img * scale).astype(np.float32)


def psnr(output: np.ndarray, reference: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB on the 0..255 scale; ``-inf`` if ``output`` has NaN/inf, ``inf`` if identical."""
    out = output.astype(np.float64)
    if not np.isfinite(out).all():
        return -math.inf
    mse = float(np.mean((out - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def torch_runner(model: nn.Module) -> Runner:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    return run


def ort_runner(model: onnx.ModelProto) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: a run that fails becomes our one line (``_run_at``), not ORT's log too
    session = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    dtype = np.float16 if model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 else np.float32
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(dtype)})[0].astype(np.float32)


def reference_runner(model: onnx.ModelProto) -> Runner:
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(model)
    dtype = np.float16 if model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 else np.float32
    return lambda x: np.asarray(evaluator.run([OUTPUT_NAME], {INPUT_NAME: x.astype(dtype)})[0]).astype(np.float32)


def check_structure(model: onnx.ModelProto, report: VerifyReport) -> None:
    """Checker (full), strict shape inference, names, opset, dynamic axes, metadata."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise StylizeError(f"{report.path}: onnx.checker failed: {str(exc).splitlines()[0]}") from None
    report.checks.append("onnx.checker.check_model(full_check=True)")
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise StylizeError(f"{report.path}: shape inference failed: {str(exc).splitlines()[0]}") from None
    report.checks.append("shape inference (strict)")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise StylizeError(f"{report.path}: opset {opset} < {MIN_OPSET}")
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise StylizeError(f"{report.path}: expected one input {INPUT_NAME!r} and one output {OUTPUT_NAME!r}, got {names}")
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4 or any(not dims[i].dim_param for i in (0, 2, 3)):
            raise StylizeError(f"{report.path}: {value.name} must be (N, 3, H, W) with dynamic N, H, W")
    report.checks.append(f"opset {opset}, I/O {INPUT_NAME}/{OUTPUT_NAME}, dynamic batch/height/width")
    meta = read_metadata(model)
    report.checks.append(f"metadata: task={meta.task} scale={meta.scale} arch={meta.arch} "
                         f"precision={meta.precision} io={meta.io_dtype} weights sha256 {meta.weights_sha256[:12]}…")


class RunFailed(StylizeError):
    """onnxruntime raised at one input size; ``reason``: its first line."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _run_at(run: Runner, x: np.ndarray, report: VerifyReport) -> np.ndarray:
    """``run(x)`` with a runtime's own exception turned into one line naming the input size."""
    try:
        return run(x)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidArgument types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise RunFailed(f"{report.path}: onnxruntime cannot run the graph at {_shape(x.shape)}: {first}", first) from None


def sizes_for(model: onnx.ModelProto, sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``sizes`` padded up to the graph's size rules (``stylize.size_*`` metadata), duplicates dropped, and always
    at least two distinct sizes: where every size pads to the same one (square multiples of 128: 128x128, the size
    the exporter traced at), the next accepted size is added, so a graph that only runs at the traced size fails."""
    rules = read_metadata(model).size_rules
    out = list(dict.fromkeys(rules.padded(h, w) for h, w in sizes))
    if len(out) < 2:
        h, w = out[-1]
        out.append(rules.padded(h + 1, w + 1))
    return out


def check_shapes(model: onnx.ModelProto, scale: int, report: VerifyReport,
                 sizes: Sequence[tuple[int, int]] = PARITY_SIZES) -> None:
    """Run onnxruntime at each size (batch 2) and check the output shape is (2, 3, H*scale, W*scale)."""
    run = ort_runner(model)
    ran: list[str] = []
    for h, w in sizes:
        try:
            out = _run_at(run, sample_input((2, 3, h, w)), report)
        except RunFailed as exc:
            if not ran:
                raise
            raise StylizeError(f"{report.path}: the graph is not size-dynamic: it runs at {ran[0]} but not at "
                               f"2x3x{h}x{w} (onnxruntime: {exc.reason})") from None
        if out.shape != (2, 3, h * scale, w * scale):
            raise StylizeError(f"{report.path}: input 2x3x{h}x{w} gave output {out.shape}, expected "
                               f"(2, 3, {h * scale}, {w * scale}): the graph is not size-dynamic")
        ran.append(f"2x3x{h}x{w}")
    report.checks.append("onnxruntime output shapes at " + ", ".join(f"2x3x{h}x{w}" for h, w in sizes))


def check_parity(model: onnx.ModelProto, reference: Runner, report: VerifyReport,
                 sizes: Sequence[tuple[int, int]] = PARITY_SIZES) -> None:
    """FP32 graph on onnxruntime CPU vs ``reference`` (PyTorch), max abs error <= ``MAX_ABS_ERROR``."""
    run = ort_runner(model)
    for h, w in sizes:
        x = sample_input((1, 3, h, w))
        err = float(np.abs(_run_at(run, x, report) - reference(x)).max())
        report.parity.append(((1, 3, h, w), err))
        if not err <= MAX_ABS_ERROR:
            raise StylizeError(f"{report.path}: ONNX vs PyTorch max abs error {err:.4g} at 1x3x{h}x{w} "
                               f"exceeds {MAX_ABS_ERROR}")


def fp16_psnrs(fp16: onnx.ModelProto, reference: Runner, sizes: Sequence[tuple[int, int]] = FP16_SIZES,
               scales: Sequence[float] = (1.0, STRESS_SCALE)) -> list[tuple[tuple[int, ...], float, float]]:
    """PSNR of the FP16 graph (numpy FP16 reference evaluator) against an FP32 runner, per size and scale."""
    run = reference_runner(fp16)
    out = []
    for h, w in sizes:
        for k in scales:
            x = sample_input((1, 3, h, w), scale=k)
            ref = reference(x)
            # Peak = the reference's own range (255 for style nets, whose norms undo the input scaling).
            peak = max(255.0, float(np.abs(ref).max()))
            with np.errstate(all="ignore"):  # an overflow is what we measure, not an error
                out.append(((1, 3, h, w), float(k), psnr(run(x), ref, peak=peak)))
    return out


def check_fp16(fp16: onnx.ModelProto, reference: Runner, report: VerifyReport,
               sizes: Sequence[tuple[int, int]] = FP16_SIZES, stress_scale: float = STRESS_SCALE) -> None:
    """No FP16 normalisation node, and PSNR >= ``MIN_PSNR_DB`` at normal and stressed input range."""
    bad = fp16_normalisation_nodes(fp16)
    if bad:
        raise StylizeError(f"{report.path}: normalisation runs in FP16 ({', '.join(bad[:3])}); it overflows")
    report.checks.append("no FP16 InstanceNormalization (normalisations are FP32 with Casts around them)")
    results = fp16_psnrs(fp16, reference, sizes, (1.0, stress_scale))
    report.psnr.extend(results)
    for shape, k, p in results:
        if not p >= MIN_PSNR_DB:
            raise StylizeError(f"{report.path}: FP16 PSNR {_db(p)} at {_shape(shape)} x{k:g} is below {MIN_PSNR_DB:g} dB")


def check_fp32_model(model: onnx.ModelProto, reference: Runner | None, scale: int, report: VerifyReport) -> None:
    """Everything for an FP32 graph; parity only when a PyTorch reference is available."""
    check_structure(model, report)
    sizes = sizes_for(model, PARITY_SIZES)
    check_shapes(model, scale, report, sizes)
    if reference is not None:
        check_parity(model, reference, report, sizes)


def check_fp16_model(model: onnx.ModelProto, reference: Runner | None, scale: int, report: VerifyReport,
                     fp32: onnx.ModelProto | None = None) -> None:
    """Everything for a mixed-precision graph; PSNR needs an FP32 reference (PyTorch or FP32 ONNX)."""
    check_structure(model, report)
    check_shapes(model, scale, report, sizes_for(model, PARITY_SIZES))
    if not is_fp16_graph(model):
        raise StylizeError(f"{report.path}: metadata says fp16 but no Conv runs in float16")
    if reference is None and fp32 is not None:
        reference = ort_runner(fp32)
    if reference is None:
        bad = fp16_normalisation_nodes(model)
        if bad:
            raise StylizeError(f"{report.path}: normalisation runs in FP16 ({', '.join(bad[:3])}); it overflows")
        report.checks.append("no FP16 InstanceNormalization (PSNR needs --checkpoint or --reference)")
        return
    fp16_sizes = sizes_for(model, FP16_SIZES)
    check_fp16(model, reference, report, fp16_sizes)
    if fp32 is not None:  # show what the converter's defaults would have done
        from stylize_video.export.fp16 import to_naive_fp16

        report.naive_psnr.extend(fp16_psnrs(to_naive_fp16(fp32), reference, fp16_sizes[:1], (STRESS_SCALE,)))
