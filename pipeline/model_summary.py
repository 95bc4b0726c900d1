"""One line that says what model runs and how its frames are fed: the line users check a wrong guess against.

    model: RealESRGAN Compact x4 (spandrel), torch on cpu fp32; I/O NCHW RGB 0..255 (ours); sizes: any size;
    tiles 256 px, overlap 32 px, 4 per call
"""

from __future__ import annotations

from stylize_video.pipeline.backends.base import Backend


def _innermost(backend: Backend) -> Backend:
    while hasattr(backend, "__dict__") and "inner" in backend.__dict__:
        backend = backend.__dict__["inner"]
    return backend


def describe_model(backend: Backend) -> dict[str, str]:
    """``{"model", "runtime", "io", "sizes", "tiles"?}`` for a loaded backend (wrapped or not)."""
    base = _innermost(backend)
    info = getattr(base, "info", None)  # ModelInfo of a torch checkpoint
    meta = getattr(base, "meta", None)  # sidecar of a TensorRT engine
    convention = getattr(base, "convention", None)  # ONNX: stylize_video.export.conventions.Convention
    if info is not None:
        model = info.label
    elif meta is not None:
        model = f"TensorRT engine x{meta.scale} ({meta.task})"
    elif convention is not None:  # ONNX: our exports name their architecture in the metadata
        props = base.session.get_modelmeta().custom_metadata_map or {}  # type: ignore[attr-defined]
        model = f"{props.get('stylize.arch', 'ONNX model')} x{backend.scale}"
    else:
        model = f"model x{backend.scale}"
    if convention is not None:
        io = convention.describe()
    elif meta is not None:
        io = f"{meta.layout} {meta.channel_order} {meta.value_range.replace('-', '..')} (engine sidecar)"
    else:
        io = "NCHW RGB 0..255 (ours)"
    rules = getattr(backend, "size_rules", None)
    out = {"model": model, "runtime": f"{backend.name} on {backend.device} {backend.precision}", "io": io,
           "sizes": rules.describe() + ("" if rules.none else " (frames padded to fit, output cropped)")
           if rules is not None else "any size"}
    options = getattr(backend, "options", None)  # TiledBackend
    if options is not None and hasattr(options, "overlap"):
        out["tiles"] = f"{options.size} px, overlap {options.overlap} px, {options.batch} per call"
    return out


def summary_line(backend: Backend) -> str:
    """``model: ...; I/O ...; sizes: ...[; tiles ...]`` for the command-line summary."""
    d = describe_model(backend)
    return (f"model: {d['model']}, {d['runtime']}; I/O {d['io']}; sizes: {d['sizes']}"
            + (f"; tiles {d['tiles']}" if "tiles" in d else ""))
