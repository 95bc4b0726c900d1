"""The backend/precision combinations a run compares, and why one may not apply here.

Every variant is loaded through ``stylize_video.pipeline.backends.load_backend`` with the keyword arguments below:
the benchmark never carries model runners of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stylize_video.errors import StylizeError

if TYPE_CHECKING:  # machine.py imports torch; stylize-bench --help stays free of it
    from stylize_video.benchmarks.machine import Capabilities

BASELINE = "torch-fp32"


# Model file each variant loads; ``artifacts.Artifacts`` derives it from --model with the export API.
ARTIFACT_FROM: dict[str, tuple[str, ...]] = {  # artefact -> --model formats it can be made from
    "ckpt": ("ckpt",),
    "onnx-fp32": ("ckpt", "onnx"),
    "onnx-fp16": ("ckpt", "onnx"),
    "plan": ("ckpt", "onnx", "plan"),
}


@dataclass(frozen=True)
class Variant:
    """One line of the comparison: ``label`` in tables, ``load`` passed to ``load_backend``.

    ``expect_name``: the ``Backend.name`` this variant must get (``load["ort_provider"]`` pins the
    ONNX Runtime execution provider); a mismatch means the variant did not run what its label says
    and is reported instead of measured.
    """

    label: str
    description: str
    load: dict[str, Any]
    artifact: str
    needs_cuda: bool = False
    ort_provider: str | None = None
    needs_tensorrt: bool = False
    expect_name: str | None = None

    @property
    def device(self) -> str:
        return str(self.load.get("device", "cpu"))

    @property
    def precision(self) -> str:
        return str(self.load.get("precision", "fp32"))


# Order = row order in reports; the baseline first.
VARIANTS: dict[str, Variant] = {v.label: v for v in (
    Variant(BASELINE, "PyTorch eager, FP32, TF32 off (baseline)",
            {"backend": "torch", "device": "auto", "precision": "fp32"}, "ckpt"),
    Variant("torch-fp16", "PyTorch eager, FP16 (norms in FP32), channels-last",
            {"backend": "torch", "device": "cuda", "precision": "fp16"}, "ckpt", needs_cuda=True),
    Variant("torch-compile-fp16", "torch.compile max-autotune (Triton autotuning + CUDA graphs), FP16",
            {"backend": "torch", "device": "cuda", "precision": "fp16", "compile": True}, "ckpt",
            needs_cuda=True, expect_name="torch-compile"),
    Variant("ort-cpu-fp32", "ONNX Runtime, CPU execution provider, FP32 graph",
            {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "ort_provider": "cpu"}, "onnx-fp32",
            ort_provider="CPUExecutionProvider", expect_name="onnxruntime-cpu"),
    Variant("ort-cuda-fp32", "ONNX Runtime, CUDA execution provider, IOBinding on torch tensors, FP32 graph",
            {"backend": "onnxruntime", "device": "cuda", "precision": "fp32", "ort_provider": "cuda"},
            "onnx-fp32", needs_cuda=True, ort_provider="CUDAExecutionProvider", expect_name="onnxruntime-cuda"),
    Variant("ort-cuda-fp16", "ONNX Runtime, CUDA execution provider, IOBinding, mixed-FP16 graph (norms FP32)",
            {"backend": "onnxruntime", "device": "cuda", "precision": "fp16", "ort_provider": "cuda"},
            "onnx-fp16", needs_cuda=True, ort_provider="CUDAExecutionProvider", expect_name="onnxruntime-cuda"),
    Variant("ort-trt-fp16", "ONNX Runtime, TensorRT execution provider, mixed-FP16 graph (norms FP32), explicit "
            "shape profile, IOBinding",
            {"backend": "onnxruntime", "device": "cuda", "precision": "fp16", "ort_provider": "tensorrt"},
            "onnx-fp16", needs_cuda=True, ort_provider="TensorrtExecutionProvider", expect_name="onnxruntime-tensorrt"),
    Variant("tensorrt-fp16", "TensorRT engine, FP16, CUDA graph where possible",
            {"backend": "tensorrt", "device": "cuda", "precision": "fp16"}, "plan",
            needs_cuda=True, needs_tensorrt=True),
)}


def resolve_device(variant: Variant, caps: Capabilities) -> str:
    """``auto`` means the GPU when there is one: the baseline runs where the other variants run.
    ``cuda`` is the GPU ``--device`` picked (``caps.gpu``)."""
    device = variant.device
    if device == "auto":
        return caps.gpu if caps.cuda else "cpu"
    return caps.gpu if device == "cuda" else device


def skip_reason(variant: Variant, caps: Capabilities, model_format: str) -> str | None:
    """Why ``variant`` cannot run here, or None when it can. Checked in this order, first reason wins."""
    sources = ARTIFACT_FROM[variant.artifact]
    if model_format not in sources:
        return f"runs a {variant.artifact} model, which cannot be made from a {model_format} (give a {' or '.join(sources)})"
    if variant.needs_cuda and not caps.cuda:
        return caps.no_gpu_reason
    if variant.needs_tensorrt and not caps.tensorrt:
        return "TensorRT is not installed (pip install tensorrt)"
    if variant.ort_provider is not None:
        if not caps.ort_providers:
            return "onnxruntime is not installed"
        if variant.ort_provider not in caps.ort_providers:
            return f"onnxruntime has no {variant.ort_provider} (available: {', '.join(caps.ort_providers)})"
    return None


def select(names: list[str] | None) -> list[Variant]:
    """Variants named by ``--backends`` (all when None), baseline always first so speed-ups have a reference."""
    if names is None:
        return list(VARIANTS.values())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise StylizeError(f"unknown backend {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    labels = dict.fromkeys([BASELINE, *names])  # ordered, without duplicates
    return [VARIANTS[n] for n in labels]
