"""What an exported ONNX model says about itself (``ModelProto.metadata_props``) and content hashes.

Keys are namespaced ``stylize.*`` so they never collide with the exporter's own entries.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import torch
from stylize_video.errors import StylizeError
from stylize_video.sizerules import SizeRules

PREFIX = "stylize."
REQUIRED = ("task", "scale", "arch", "value_range", "channel_order", "layout", "weights_sha256")


@dataclass
class ModelMetadata:
    """Facts a consumer of the ONNX file (pipeline, engine builder) needs without PyTorch."""

    task: str  # "style" | "sr"
    scale: int  # output size / input size
    arch: str  # stylize_video.train.networks architecture name
    weights_sha256: str  # see weights_sha256()
    value_range: str = "0-255"  # float input and output, not clamped
    channel_order: str = "RGB"
    layout: str = "NCHW"
    precision: str = "fp32"  # "fp32" | "fp16-mixed"
    io_dtype: str = "float32"  # "float32" | "float16"
    source: str = "stylize-video"  # or "pytorch-examples" / "onnx-model-zoo:<name>" / "spandrel (<file>)"
    exporter: str = "torchscript"  # which torch.onnx path produced the graph
    # Input sizes the graph accepts (stylize_video.sizerules.SizeRules); runtimes pad to them and crop back.
    size_minimum: int = 1
    size_multiple_of: int = 1
    size_square: bool = False
    supports_half: bool = True  # False: the architecture must not run in FP16 (spandrel's supports_half)

    @property
    def size_rules(self) -> SizeRules:
        return SizeRules(self.size_minimum, self.size_multiple_of, self.size_square)

    @size_rules.setter
    def size_rules(self, rules: SizeRules) -> None:
        self.size_minimum, self.size_multiple_of, self.size_square = rules.minimum, rules.multiple_of, rules.square


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor in key order: independent of the file format."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_metadata(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Replace our ``stylize.*`` entries in ``model.metadata_props`` with ``meta``."""
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    values = {k: v for k, v in asdict(meta).items() if not k.startswith("size_")}
    values.update(meta.size_rules.to_metadata())  # one spelling of the size keys (stylize_video.sizerules)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = PREFIX + key, str(value)


def load_onnx(path: str | os.PathLike[str], *, load_external_data: bool = True) -> onnx.ModelProto:
    """``onnx.load`` with one-line errors for a missing file or one that is not an ONNX model."""
    from google.protobuf.message import DecodeError  # onnx's own dependency

    path = Path(path)
    if not path.is_file():
        raise StylizeError(f"ONNX model not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StylizeError(f"{path} is not an ONNX model ({reason})") from None


def read_metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> ModelMetadata:
    """Read our metadata back; a file without it raises ``StylizeError`` naming the missing keys."""
    if not isinstance(model, onnx.ModelProto):
        model = load_onnx(model, load_external_data=False)
    props = {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
    missing = [k for k in REQUIRED if k not in props]
    if missing:
        raise StylizeError(f"ONNX model has no stylize-video metadata ({', '.join(missing)} missing); "
                           "export it with `stylize-export onnx`")
    fields = set(ModelMetadata.__dataclass_fields__)
    kwargs: dict[str, object] = {k: v for k, v in props.items() if k in fields}
    kwargs["scale"] = int(props["scale"])
    rules = SizeRules.from_metadata(props) or SizeRules()
    kwargs.update(size_minimum=rules.minimum, size_multiple_of=rules.multiple_of, size_square=rules.square,
                  supports_half=str(props.get("supports_half", "True")).lower() in ("true", "1", "yes"))
    return ModelMetadata(**kwargs)  # type: ignore[arg-type]


def metadata_for(model: torch.nn.Module, info: object) -> ModelMetadata:
    """Our metadata for a network loaded by ``stylize_video.train.checkpoint.load_model`` and its ``ModelInfo``."""
    meta = ModelMetadata(task=info.task, scale=info.scale, arch=info.arch,  # type: ignore[attr-defined]
                         weights_sha256=weights_sha256(model.state_dict()), source=info.source,  # type: ignore[attr-defined]
                         supports_half=bool(getattr(info, "supports_half", True)))
    meta.size_rules = getattr(info, "size_rules", None) or SizeRules()
    return meta
