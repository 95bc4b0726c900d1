"""What one benchmark run measures: the parsed, validated options of ``stylize-bench``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stylize_video.errors import StylizeError
from stylize_video.modelfiles import KIND_OF_SUFFIX, accepted_suffixes

# Named frame sizes (width, height). 180p is there so a CPU smoke run stays small.
NAMED_SIZES: dict[str, tuple[int, int]] = {
    "180p": (320, 180),
    "240p": (426, 240),
    "270p": (480, 270),
    "360p": (640, 360),
    "480p": (854, 480),
    "540p": (960, 540),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}
_WXH = re.compile(r"^(\d+)x(\d+)$")
# Any size: every backend pads frames to its model's size rules (``stylize_video.pipeline.sizing``), as the
# frame path does, so a 3x3 run times what a 3x3 video costs.
MIN_SIDE = 1

# Sizes name the network INPUT. For x4 super-resolution the defaults are the inputs whose
# outputs are 720p / 1080p / 2160p, the sizes a user upscales to.
DEFAULT_SIZES = {"style": "360p,720p,1080p,2160p", "sr": "180p,270p,540p"}

RANDOM_WEIGHT_KINDS = ("style", "sr4")
# suffix -> the kind names of the benchmark's records, from the one list stylize-video loads by
MODEL_KINDS = {suffix: {"checkpoint": "ckpt", "onnx": "onnx", "engine": "plan"}[kind]
               for suffix, kind in KIND_OF_SUFFIX.items()}


@dataclass(frozen=True)
class FrameSize:
    """A frame size to benchmark; ``label`` is what tables and JSON show (``"720p"`` or ``"800x600"``)."""

    label: str
    width: int
    height: int


@dataclass
class BenchConfig:
    """Options of one ``stylize-bench`` run (see ``benchmarks/README.md``)."""

    model: Path | None = None
    random_weights: str | None = None
    backends: list[str] | None = None  # None: every known variant (inapplicable ones are reported skipped)
    sizes: list[FrameSize] = field(default_factory=list)
    batch: int = 1
    iters: int = 50
    warmup: int = 10
    video: Path | None = None
    e2e: bool = True
    e2e_frames: int = 120
    e2e_repeats: int = 1  # (plain transcode, full pipeline) pairs; the ratio reported is their median
    identity_model: bool = False  # --identity-model: a do-nothing ONNX model made in the work dir
    clip_size: FrameSize | None = None  # synthetic clip size; None: the first of ``sizes``
    throughput_batches: list[int] = field(default_factory=lambda: [1, 2, 4])
    throughput_streams: list[int] = field(default_factory=lambda: [1, 2, 3])
    throughput_size: FrameSize | None = None  # None: the size whose output is 1080p
    json_out: Path | None = None
    markdown_out: Path | None = None
    plot_out: Path | None = None
    machine_label: str | None = None
    work_dir: Path | None = None
    seed: int = 0
    compile_mode: str | None = None  # torch.compile mode of the torch-compile variant; None: its default
    budget_s: float | None = None  # wall-clock allowance: what has not begun by then is reported as skipped
    device: str = "auto"  # --device: cpu skips the GPU variants, cuda:N picks the GPU

    @property
    def model_kind(self) -> str:
        """``ckpt`` | ``onnx`` | ``plan`` for ``--model``; ``ckpt`` for random weights (saved as one)."""
        if self.model is None:
            return "ckpt"
        return MODEL_KINDS[self.model.suffix.lower()]


def parse_size(text: str) -> FrameSize:
    """``"720p"`` or ``"1280x720"`` -> FrameSize. Raises StylizeError on anything else."""
    text = text.strip().lower()
    if text in NAMED_SIZES:
        w, h = NAMED_SIZES[text]
        return FrameSize(text, w, h)
    m = _WXH.match(text)
    if not m:
        known = ", ".join(sorted(NAMED_SIZES, key=lambda k: NAMED_SIZES[k][1]))
        raise StylizeError(f"bad size {text!r}: use WIDTHxHEIGHT or one of {known}")
    w, h = int(m.group(1)), int(m.group(2))
    if min(w, h) < MIN_SIDE:
        raise StylizeError(f"bad size {text!r}: both sides must be at least {MIN_SIDE} pixel"
                           + ("s" if MIN_SIDE != 1 else ""))
    return FrameSize(text, w, h)


def parse_sizes(text: str) -> list[FrameSize]:
    """Comma-separated sizes, duplicates removed, order kept."""
    sizes: list[FrameSize] = []
    for part in text.split(","):
        if part.strip():
            size = parse_size(part)
            if size not in sizes:
                sizes.append(size)
    if not sizes:
        raise StylizeError("--sizes is empty")
    return sizes


def parse_int_list(text: str, option: str = "", minimum: int = 1) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]; every value must be an integer >= ``minimum``. ``option`` heads the message
    (argparse heads it itself, see ``cliargs.parsed_by``)."""
    head = f"{option} " if option else ""
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise StylizeError(f"{head}expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < minimum:
        raise StylizeError(f"{head}values must be integers >= {minimum}, got {text!r}")
    return sorted(set(values))


def model_kind_of(path: Path) -> str:
    """Model format from the file suffix; StylizeError for unknown suffixes or missing files."""
    kind = MODEL_KINDS.get(path.suffix.lower())
    if kind is None:
        raise StylizeError(f"--model {path}: unknown model type {path.suffix!r}; "
                           f"expected {accepted_suffixes()}")
    if not path.is_file():
        raise StylizeError(f"--model {path}: file not found")
    return kind
