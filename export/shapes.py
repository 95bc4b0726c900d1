"""Shape profiles for dynamic-shape TensorRT engines: parsing, validation, defaults.

A profile is three (H, W) pairs (min / opt / max) plus a batch range. No TensorRT import here,
so the CLI can validate arguments and the cache can key engines on machines without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stylize_video.errors import StylizeError
from stylize_video.sizerules import SizeRules

# Smallest side the networks accept: the 9x9 reflection pad needs 5 pixels (TransformerNet.MIN_SIDE).
MIN_SIDE = 5
_HW = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")

# Per task: (min, opt, max) as (H, W). Style max is a 3840x3840 square so that landscape AND portrait
# 4K (2160x3840 / 3840x2160) fit one engine; opt is the common 1080p landscape frame.
_STYLE_DEFAULT = ((64, 64), (1080, 1920), (3840, 3840))


def parse_hw(text: str, what: str = "shape") -> tuple[int, int]:
    """Parse ``"HxW"`` (e.g. ``"1080x1920"``) into ``(H, W)``; raise ``StylizeError`` if malformed."""
    m = _HW.match(str(text))
    if not m:
        raise StylizeError(f"{what} must look like HEIGHTxWIDTH (e.g. 1080x1920), got {text!r}")
    h, w = int(m.group(1)), int(m.group(2))
    if h < MIN_SIDE or w < MIN_SIDE:
        raise StylizeError(f"{what} {h}x{w} is too small: both sides must be >= {MIN_SIDE}")
    return h, w


def format_hw(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


@dataclass(frozen=True)
class ShapeProfile:
    """Optimisation profile of the ``input`` tensor (NCHW, C = 3).

    ``min``/``opt``/``max`` are (H, W); batch runs from 1 to ``max_batch`` with opt batch 1.
    """

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]
    max_batch: int = 1

    def __post_init__(self) -> None:
        for name, hw in (("min", self.min), ("opt", self.opt), ("max", self.max)):
            if len(hw) != 2 or min(hw) < MIN_SIDE:
                raise StylizeError(f"{name} shape {hw} is invalid: both sides must be >= {MIN_SIDE}")
        for axis, label in ((0, "height"), (1, "width")):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise StylizeError(
                    f"shape profile {label}s must satisfy min <= opt <= max, got "
                    f"{self.min[axis]} / {self.opt[axis]} / {self.max[axis]} ({self.describe()})"
                )
        if self.max_batch < 1:
            raise StylizeError(f"max batch must be >= 1, got {self.max_batch}")

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max and self.max_batch == 1

    def nchw(self) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], tuple[int, int, int, int]]:
        """(min, opt, max) as full NCHW shapes for ``IOptimizationProfile.set_shape``."""
        return ((1, 3, *self.min), (1, 3, *self.opt), (self.max_batch, 3, *self.max))

    def contains(self, shape: tuple[int, ...]) -> bool:
        """Whether an NCHW input shape can run on an engine built with this profile."""
        if len(shape) != 4 or shape[1] != 3:
            return False
        n, _, h, w = shape
        return (1 <= n <= self.max_batch and self.min[0] <= h <= self.max[0]
                and self.min[1] <= w <= self.max[1])

    def describe(self) -> str:
        """Short, file-name-safe text: ``64x64-1080x1920-3840x3840`` (+ ``-b4`` for batch > 1)."""
        text = "-".join(format_hw(hw) for hw in (self.min, self.opt, self.max))
        return text + (f"-b{self.max_batch}" if self.max_batch > 1 else "")

    def cli_args(self) -> list[str]:
        """The ``stylize-export engine`` options that rebuild this profile."""
        if self.is_static:
            return ["--static", format_hw(self.opt)]
        args = ["--min-shape", format_hw(self.min), "--opt-shape", format_hw(self.opt), "--max-shape", format_hw(self.max)]
        return args + (["--max-batch", str(self.max_batch)] if self.max_batch > 1 else [])

    def widened_to(self, shape: tuple[int, ...]) -> ShapeProfile:
        """The smallest change of this profile that also admits the NCHW ``shape``."""
        n, _, h, w = shape
        lo = (max(MIN_SIDE, min(self.min[0], h)), max(MIN_SIDE, min(self.min[1], w)))
        hi = (max(self.max[0], h), max(self.max[1], w))
        opt = (min(max(self.opt[0], lo[0]), hi[0]), min(max(self.opt[1], lo[1]), hi[1]))
        return ShapeProfile(lo, opt, hi, max(self.max_batch, n))

    def to_dict(self) -> dict[str, object]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max), "max_batch": self.max_batch}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ShapeProfile:
        def hw(key: str) -> tuple[int, int]:
            v = data[key]
            if not isinstance(v, (list, tuple)) or len(v) != 2:
                raise StylizeError(f"shape profile field {key!r} must be [H, W], got {v!r}")
            return int(v[0]), int(v[1])
        return cls(hw("min"), hw("opt"), hw("max"), int(data.get("max_batch", 1)))  # type: ignore[arg-type]


def default_profile(task: str = "style", scale: int = 1) -> ShapeProfile:
    """Default profile per task. SR inputs are ``scale`` times smaller so outputs stay <= 3840 a side."""
    (mn, opt, mx) = _STYLE_DEFAULT
    if task == "style" or scale <= 1:
        return ShapeProfile(mn, opt, mx)
    def div(hw: tuple[int, int], floor: int) -> tuple[int, int]:
        return max(floor, hw[0] // scale), max(floor, hw[1] // scale)
    return ShapeProfile(div(mn, 16), div(opt, 16), div(mx, 16))


def build_profile(
    task: str = "style",
    scale: int = 1,
    *,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    static: str | None = None,
    max_batch: int = 1,
) -> ShapeProfile:
    """Profile from CLI strings; unspecified parts come from :func:`default_profile`."""
    if static is not None:
        if any(s is not None for s in (min_shape, opt_shape, max_shape)):
            raise StylizeError("--static cannot be combined with --min-shape/--opt-shape/--max-shape")
        hw = parse_hw(static, "--static")
        return ShapeProfile(hw, hw, hw, max_batch)
    base = default_profile(task, scale)
    mn = parse_hw(min_shape, "--min-shape") if min_shape else base.min
    mx = parse_hw(max_shape, "--max-shape") if max_shape else base.max
    if opt_shape:
        opt = parse_hw(opt_shape, "--opt-shape")
    else:  # keep the default opt, clamped into a user-given range
        opt = (min(max(base.opt[0], mn[0]), mx[0]), min(max(base.opt[1], mn[1]), mx[1]))
    return ShapeProfile(mn, opt, mx, max_batch)


def fit_profile(profile: ShapeProfile, rules: SizeRules) -> ShapeProfile:
    """``profile`` adjusted to a network's size rules: min and opt raised to the nearest accepted size (inputs are
    padded up to accepted sizes, so smaller shapes never reach the engine). A static profile must be accepted
    as it is. Raises ``StylizeError`` naming the sizes to use when no accepted size fits the profile."""
    if rules.none:
        return profile
    if profile.min == profile.max:
        if not rules.accepts(*profile.min):
            raise StylizeError(f"static shape {format_hw(profile.min)} breaks the model's size rules "
                               f"({rules.describe()}): use {format_hw(rules.padded(*profile.min))}")
        return profile
    low = rules.padded(*profile.min)
    if low[0] > profile.max[0] or low[1] > profile.max[1]:
        raise StylizeError(f"shape profile {profile.describe()} admits no size the model accepts "
                           f"({rules.describe()}): the smallest is {format_hw(low)}")
    opt = rules.padded(*profile.opt)
    opt = (min(opt[0], profile.max[0]), min(opt[1], profile.max[1]))
    return ShapeProfile((max(low[0], profile.min[0]), max(low[1], profile.min[1])),
                        (max(opt[0], low[0]), max(opt[1], low[1])), profile.max, profile.max_batch)
