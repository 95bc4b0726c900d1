"""Model file kinds by file suffix: one list for every script that takes a model (``stylize-video``'s model flags,
``stylize-bench --model``), so what a message offers is what the loaders accept. Standard library only: the
console scripts' ``--help`` imports it."""

from __future__ import annotations

# file suffix -> model kind: a PyTorch checkpoint (ours, pytorch/examples', or any architecture spandrel detects,
# also as safetensors), an ONNX model, a serialized TensorRT engine
KIND_OF_SUFFIX: dict[str, str] = {
    ".pth": "checkpoint", ".pt": "checkpoint", ".ckpt": "checkpoint", ".model": "checkpoint",
    ".safetensors": "checkpoint",
    ".onnx": "onnx",
    ".plan": "engine", ".engine": "engine", ".trt": "engine",
}
_NAMES = {"checkpoint": "a PyTorch checkpoint", "onnx": "an ONNX model", "engine": "a TensorRT engine"}


def accepted_suffixes() -> str:
    """``"a PyTorch checkpoint (.pth, .pt, ...), an ONNX model (.onnx) or a TensorRT engine (.plan, .engine,
    .trt)"``: what an "unknown model file" message offers."""
    parts = [f"{name} ({', '.join(s for s, k in KIND_OF_SUFFIX.items() if k == kind)})" for kind, name in _NAMES.items()]
    return ", ".join(parts[:-1]) + " or " + parts[-1]
