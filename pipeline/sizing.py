"""Size rules applied around any backend: pad each input up to a size the network accepts, crop the output back.

One mechanism for every path (torch, ONNX Runtime, TensorRT, the ``Stylizer`` API, the benchmarks): a
backend states its ``size_rules`` (``stylize_video.sizerules.SizeRules``: from our checkpoints, spandrel's
descriptor, the ``stylize.size_*`` ONNX metadata, an engine's sidecar, or ``probe_size_rules`` for ONNX files
without metadata), and ``SizedBackend`` pads and crops. Tiny frames (1x1 and up) work the same way.

Padding is on the bottom and right, as spandrel's ``pad_tensor`` does: reflection where the frame is large
enough (no hard edge for the network to react to), replication for the rest (a 1-pixel side cannot be
reflected). The output is cropped to (H * scale, W * scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from stylize_video.errors import StylizeError
from stylize_video.pipeline.backends.base import Backend
from stylize_video.sizerules import SizeRules

# Probing an ONNX model without metadata: base side (a multiple of everything common), then base + m.
PROBE_BASE = 64
PROBE_MULTIPLES = (*range(1, 17), 24, 32, 48, 64)


def pad_bottom_right(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (N, C, h, w) to (N, C, ``height``, ``width``): reflect up to h - 1 / w - 1 rows, replicate the rest."""
    h, w = x.shape[-2:]
    ph, pw = height - h, width - w
    if ph < 0 or pw < 0:
        raise ValueError(f"cannot pad {h}x{w} down to {height}x{width}")
    if ph == 0 and pw == 0:
        return x
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    if rh or rw:
        x = F.pad(x, (0, rw, 0, rh), mode="reflect")
    if ph - rh or pw - rw:
        x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x


class WrappedBackend(Backend):
    """A backend around another (``inner``): attributes not defined by the wrapper (``session``, ``meta``,
    ``compile_mode``, ``info``...) are the inner backend's; ``close`` closes it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "inner":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    # Backend fields forwarded explicitly (Backend declares some as class attributes: __getattr__ would not run)
    name = property(lambda self: self.inner.name)  # type: ignore[assignment]
    device = property(lambda self: self.inner.device)  # type: ignore[assignment]
    precision = property(lambda self: self.inner.precision)  # type: ignore[assignment]
    scale = property(lambda self: self.inner.scale)  # type: ignore[assignment]
    max_batch = property(lambda self: getattr(self.inner, "max_batch", None))  # type: ignore[assignment]

    def close(self) -> None:
        self.inner.close()


class SizedBackend(WrappedBackend):
    """``inner`` behind its size rules: any (N, 3, H, W) with H, W >= 1 in, (N, 3, H*s, W*s) out (batches larger than
    ``inner.max_batch`` in chunks)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        rules = getattr(inner, "size_rules", None)
        self.size_rules: SizeRules = rules if isinstance(rules, SizeRules) else SizeRules()

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """NCHW ``shape`` -> the NCHW shape the inner backend is given."""
        return (*shape[:-2], *self.size_rules.padded(int(shape[-2]), int(shape[-1])))

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Refuse, before any work, frames of NCHW ``shape`` the inner backend cannot take after padding."""
        if min(shape[-2:]) < 1:
            raise StylizeError(f"empty frames ({shape[-2]}x{shape[-1]})")
        check = getattr(self.inner, "check_input", None)
        if check is not None:
            n = min(int(shape[0]), self.max_batch or int(shape[0]))  # larger batches go in chunks
            check(self.padded_shape((n, *shape[1:])))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        limit = self.max_batch
        if limit and x.shape[0] > limit:  # a fixed-batch graph or engine profile: in chunks it takes
            return torch.cat([self(chunk) for chunk in x.split(limit)])
        h, w = int(x.shape[-2]), int(x.shape[-1])
        ph, pw = self.size_rules.padded(h, w)
        y = self.inner(pad_bottom_right(x, ph, pw))
        s = self.inner.scale or 1
        if tuple(y.shape[-2:]) != (ph * s, pw * s):
            raise StylizeError(f"model output {tuple(y.shape[-2:])} for input ({ph}, {pw}) is not the input size "
                               f"x{s}; a model whose output is not a fixed multiple of its input cannot run on video")
        return y if (ph, pw) == (h, w) else y[..., : h * s, : w * s]


def with_size_rules(backend: Backend) -> Backend:
    """``backend`` wrapped in ``SizedBackend`` (idempotent: a wrapped or tiled backend is returned as it is)."""
    from stylize_video.pipeline.tiling import TiledBackend

    return backend if isinstance(backend, (SizedBackend, TiledBackend)) else SizedBackend(backend)


Runner = Callable[[torch.Tensor], torch.Tensor]


class ProbeFailed(StylizeError):
    """``probe_size_rules`` found no size the model runs at."""


def _output_hw(run: Runner, h: int, w: int, device: torch.device) -> tuple[int, int] | str:
    """Output (H, W) of one probe run at (h, w), or the runtime's first line of error when the model refuses it."""
    try:
        y = run(torch.full((1, 3, h, w), 128.0, device=device))
    except StylizeError:
        raise
    except Exception as exc:  # noqa: BLE001 - runtimes raise their own types for sizes a graph cannot take
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if y.dim() == 4 and y.shape[1] == 3:
        return int(y.shape[-2]), int(y.shape[-1])
    return f"output shape {tuple(y.shape)} is not (N, 3, H, W)"


def probe_bases(base: int = PROBE_BASE) -> list[int]:
    """Sides tried in turn until the model runs: ``base``, then for each m in ``PROBE_MULTIPLES`` the smallest
    multiple of m >= ``base`` (a pixel-unshuffle by 3 refuses 64 and takes 66), smallest first."""
    return [base, *sorted({-(-base // m) * m for m in PROBE_MULTIPLES} - {base})]


def probe_size_rules(run: Runner, device: torch.device, scale: int | None = None,
                     base: int = PROBE_BASE) -> tuple[int, SizeRules]:
    """(scale, size rules) of a dynamic-size model found by running it, for ONNX files without our metadata.

    Base: the first of ``probe_bases(base)`` the model runs at. Scale: output / input at base x base (or
    ``scale`` when known). Multiple m: the smallest m in ``PROBE_MULTIPLES`` for which a (base + m) x (base + 2m)
    input gives exactly scale times that size (e.g. a pytorch/examples TransformerNet exported without internal
    padding gives 68x68 for 65x65: m = 4). Minimum: the smallest k * m that runs and keeps the size (reflection
    pads refuse sides <= their width). Square-only models are not found this way (their rules need our metadata).
    Raises ``StylizeError`` (one line) when no base runs or the output is not a fixed integer multiple of the input.
    """
    errors: dict[int, str] = {}
    for side in probe_bases(base):
        first = _output_hw(run, side, side, device)
        if not isinstance(first, str):
            base = side
            break
        errors[side] = first
    else:
        raise ProbeFailed(f"the model does not run on a 1x3xHxW input for H = W in {', '.join(map(str, errors))} "
                          f"(at {base}x{base}: {errors[base][:160]}), so its size rules cannot be found; export it "
                          "with stylize-export onnx, which records them")
    if scale is None:
        if first[0] % base or first[0] != first[1]:
            raise StylizeError(f"model output {first} for a ({base}, {base}) input is not the input size times an "
                               f"integer scale")
        scale = first[0] // base
    multiple = None
    for m in PROBE_MULTIPLES:
        h, w = base + m, base + 2 * m
        if _output_hw(run, h, w, device) == (h * scale, w * scale):
            multiple = m
            break
    if multiple is None:
        raise StylizeError(f"model output is not a fixed multiple of the input size (x{scale} at {base}x{base}, "
                           f"but no size {base}+m for m up to {PROBE_MULTIPLES[-1]} keeps the ratio)")
    minimum = base
    for k in range(1, math.ceil(base / multiple)):
        side = k * multiple
        if _output_hw(run, side, side, device) == (side * scale, side * scale):
            minimum = side
            break
    return scale, SizeRules(minimum=minimum, multiple_of=multiple)


def probe_onnx_session(session: object, scale: int | None, rules: SizeRules | None) -> tuple[int, SizeRules]:
    """(scale, size rules) of an ``onnxruntime.InferenceSession`` image model, keeping what is already known.

    A fixed-size graph is run once at its size (its rules: ``fixed`` at that size, so smaller frames are padded
    to it); a dynamic one goes through ``probe_size_rules``, and where that finds no size, an NHWC input is
    tried for a ``--layout nhwc`` hint. Runs happen on the host with ONNX Runtime's own
    error log silenced, since probes expect some sizes to fail.
    """
    import numpy as np
    import onnxruntime as ort

    inp, out = session.get_inputs()[0], session.get_outputs()[0]  # type: ignore[attr-defined]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4

    def run(x: torch.Tensor) -> torch.Tensor:
        (y,) = session.run([out.name], {inp.name: x.detach().cpu().numpy().astype(dtype)}, quiet)[:1]  # type: ignore[attr-defined]
        return torch.from_numpy(np.asarray(y)).float()

    static = [d if isinstance(d, int) else None for d in inp.shape[2:]]
    if None not in static:
        h, w = static
        y = run(torch.full((1, 3, h, w), 128.0))
        oh, ow = y.shape[-2:]
        if oh % h or ow % w or oh // h != ow // w or y.shape[1] != 3:
            raise StylizeError(f"model output {tuple(y.shape)} for input (1, 3, {h}, {w}) is not an image x "
                               f"integer scale")
        fixed = SizeRules(fixed=(h, w))  # frames up to h x w are padded to it, larger ones need --tile
        return scale or oh // h, rules.merged(fixed) if rules else fixed
    try:
        found_scale, found = probe_size_rules(run, torch.device("cpu"), scale)
    except ProbeFailed as exc:
        try:  # an NHWC graph whose every dimension is dynamic takes NCHW input without complaint, then fails inside
            nhwc = session.run([out.name], {inp.name: np.full((1, PROBE_BASE, PROBE_BASE, 3), 128, dtype)}, quiet)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - not NHWC either: the probe's own message stands
            raise exc from None
        if np.asarray(nhwc[0]).shape[-1] == 3:
            raise StylizeError(f"the model does not run on NCHW input but does on NHWC (1x{PROBE_BASE}x{PROBE_BASE}x3): "
                               "pass --layout nhwc (and --channel-order/--value-range if they differ too)") from None
        raise
    return found_scale, rules or found
