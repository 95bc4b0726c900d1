"""Size rules: which input sizes a network accepts (one definition for every stage and backend).

Same meaning as spandrel's ``SizeRequirements`` (https://github.com/chaiNNer-org/spandrel,
``spandrel/__helpers/size_req.py``): every side at least ``minimum``, a multiple of ``multiple_of``,
and height == width when ``square``. Frames that do not fit are padded up to the nearest size that
does and the output is cropped back (``stylize_video.pipeline.sizing``). Recorded in our ONNX
metadata (``stylize.size_*``) and in engine sidecars, so every backend applies the same rules.
A graph with a fixed input size (an ONNX file exported without dynamic axes, a ``--static`` engine) has
``fixed``: frames up to that size are padded to it, larger ones go through ``--tile`` with tiles of it.

No torch import here: the CLI and the engine metadata use it on machines without PyTorch loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stylize_video.errors import StylizeError

# metadata key (after the "stylize." prefix) -> field
METADATA_KEYS = {"size_minimum": "minimum", "size_multiple_of": "multiple_of", "size_square": "square"}


@dataclass(frozen=True)
class SizeRules:
    """Input sizes a network accepts, in input pixels.

    ``minimum``: smallest side (>= 1; rounded up to a multiple of ``multiple_of``, as spandrel does);
    ``multiple_of``: both sides must be multiples of it (>= 1); ``square``: height must equal width;
    ``fixed``: the only accepted (H, W), when the graph has no dynamic height/width (the other rules then say
    nothing more).
    """

    minimum: int = 1
    multiple_of: int = 1
    square: bool = False
    fixed: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if int(self.multiple_of) < 1:
            raise StylizeError(f"size rule multiple_of must be >= 1, got {self.multiple_of}")
        minimum = max(1, int(self.minimum))
        object.__setattr__(self, "minimum", -(-minimum // self.multiple_of) * self.multiple_of)
        object.__setattr__(self, "multiple_of", int(self.multiple_of))
        object.__setattr__(self, "square", bool(self.square))
        if self.fixed is not None:
            fixed = (int(self.fixed[0]), int(self.fixed[1]))
            if min(fixed) < 1:
                raise StylizeError(f"a fixed input size must be at least 1x1, got {fixed}")
            object.__setattr__(self, "fixed", fixed)

    @property
    def none(self) -> bool:
        """True when every size >= 1x1 is accepted as it is."""
        return self.minimum == 1 and self.multiple_of == 1 and not self.square and self.fixed is None

    def fits(self, height: int, width: int) -> bool:
        """False only for a frame larger than a fixed input size (it needs tiles)."""
        return self.fixed is None or (height <= self.fixed[0] and width <= self.fixed[1])

    def too_large(self, height: int, width: int) -> str:
        """The one-line refusal of a ``height`` x ``width`` frame that does not ``fit``, with the option to use."""
        fh, fw = self.fixed or (height, width)
        hint = (f"run it in tiles with --tile {fh}" if fh == fw else
                "re-export it with dynamic height/width (tiles are square, this input is not)")
        return f"{width}x{height} frames are larger than this model's fixed input size {fw}x{fh}: {hint}"

    def padded(self, height: int, width: int) -> tuple[int, int]:
        """The smallest accepted (H, W) >= (``height``, ``width``); StylizeError (``too_large``) if there is none."""
        if self.fixed is not None:
            if not self.fits(height, width):
                raise StylizeError(self.too_large(height, width))
            return self.fixed

        def up(side: int) -> int:
            side = max(self.minimum, side)
            return -(-side // self.multiple_of) * self.multiple_of
        h, w = up(height), up(width)
        return (max(h, w), max(h, w)) if self.square else (h, w)

    def accepts(self, height: int, width: int) -> bool:
        return self.fits(height, width) and self.padded(height, width) == (height, width)

    def merged(self, other: SizeRules) -> SizeRules:
        """Rules that satisfy both (e.g. a network's own and an engine profile's minimum)."""
        return SizeRules(max(self.minimum, other.minimum), math.lcm(self.multiple_of, other.multiple_of),
                         self.square or other.square, self.fixed or other.fixed)

    def describe(self) -> str:
        """Short text for summaries: ``any size``, ``sides >= 16, multiples of 8, square``."""
        if self.none:
            return "any size"
        if self.fixed is not None:
            return f"fixed {self.fixed[1]}x{self.fixed[0]}"
        parts = [f"sides >= {self.minimum}"] if self.minimum > 1 else []
        parts += [f"multiples of {self.multiple_of}"] if self.multiple_of > 1 else []
        parts += ["square"] if self.square else []
        return ", ".join(parts)

    def to_metadata(self) -> dict[str, str]:
        """``{"size_minimum": "16", "size_multiple_of": "8", "size_square": "false"}`` (keys without prefix)."""
        return {"size_minimum": str(self.minimum), "size_multiple_of": str(self.multiple_of),
                "size_square": "true" if self.square else "false"}

    @classmethod
    def from_metadata(cls, props: Mapping[str, str]) -> SizeRules | None:
        """Rules from ``to_metadata`` keys (prefix already removed); None when none of them is present."""
        if not any(k in props for k in METADATA_KEYS):
            return None
        try:
            return cls(int(props.get("size_minimum", 1)), int(props.get("size_multiple_of", 1)),
                       str(props.get("size_square", "false")).strip().lower() in ("1", "true", "yes"))
        except ValueError:
            raise StylizeError(f"unreadable size rules in the model metadata: {dict(props)}") from None

    @classmethod
    def from_spandrel(cls, req: object) -> SizeRules:
        """From a ``spandrel.SizeRequirements`` (minimum 0 there means no minimum)."""
        return cls(max(1, int(req.minimum)), int(req.multiple_of), bool(req.square))  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"minimum": self.minimum, "multiple_of": self.multiple_of, "square": self.square}
        if self.fixed is not None:  # only then: sidecars written before the field stay identical
            out["fixed"] = list(self.fixed)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SizeRules:
        fixed = data.get("fixed")
        return cls(int(data.get("minimum", 1)), int(data.get("multiple_of", 1)),  # type: ignore[arg-type]
                   bool(data.get("square", False)), tuple(fixed) if fixed else None)  # type: ignore[arg-type]
