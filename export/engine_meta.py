"""Sidecar metadata of a TensorRT engine (``OUT.plan.json``) and the checks that refuse a mismatched engine.

Why a sidecar and not bytes embedded in the plan: a ``.plan`` stays exactly what TensorRT serialised, so
``trtexec --loadEngine``, Polygraphy, DeepStream and the C++ runtime can load it unchanged; and the JSON is
readable (and checkable) without TensorRT or a GPU, which is what lets the pipeline refuse an engine
before touching CUDA. The price is two files to move together, so a plan without its JSON is refused.

No ``tensorrt`` import here.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stylize_video.errors import StylizeError
from stylize_video.export.shapes import ShapeProfile, fit_profile
from stylize_video.outfiles import partial_path
from stylize_video.sizerules import SizeRules

FORMAT = "stylize-video/engine/1"
SUFFIX = ".json"


@dataclass
class BuildOptions:
    """Everything ``stylize-export engine`` was asked for, enough to rebuild the same engine."""

    precision: str = "fp16"  # "fp16" | "fp32"
    fp16_io: bool = False
    workspace_mib: int | None = None
    builder_optimization_level: int | None = None
    hardware_compatible: bool = False
    version_compatible: bool = False
    typing: str = "auto"  # "auto" | "strong" | "weak" (what was requested; EngineMeta.typing is what was used)
    timing_cache: str | None = None


@dataclass
class RuntimeEnv:
    """The machine an engine is (to be) built or run on."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]


@dataclass
class EngineMeta:
    """What the sidecar records about one engine."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    profile: ShapeProfile
    precision: str  # "fp16" | "fp32"
    typing: str  # "strong" | "weak": network creation mode actually used
    task: str
    scale: int
    input_dtype: str  # "float32" | "float16"
    output_dtype: str
    onnx_sha256: str
    onnx_path: str
    build: BuildOptions = field(default_factory=BuildOptions)
    format: str = FORMAT
    # From the source ONNX's stylize.* metadata (absent in sidecars written before they existed: defaults).
    size_rules: dict[str, Any] = field(default_factory=dict)  # SizeRules.to_dict() of the network
    value_range: str = "0-255"  # I/O convention of the engine's tensors
    layout: str = "NCHW"
    channel_order: str = "RGB"

    def input_size_rules(self) -> SizeRules:
        """The network's size rules plus the profile's minimum side, when one square minimum fits the profile
        (frames smaller than the profile are then padded up to it instead of refused); a static profile is a fixed
        input size."""
        rules = SizeRules.from_dict(self.size_rules) if self.size_rules else SizeRules()
        if self.profile.is_static:  # --static HxW: smaller frames padded to it, larger ones need --tile
            return rules.merged(SizeRules(fixed=self.profile.opt))
        low, high = max(self.profile.min), min(self.profile.max)
        return rules.merged(SizeRules(minimum=low)) if low <= high else rules

    def to_json(self) -> str:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        data["compute_capability"] = list(self.compute_capability)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineMeta:
        if data.get("format") != FORMAT:
            raise StylizeError(f"unknown engine metadata format {data.get('format')!r} (expected {FORMAT})")
        data = dict(data)
        data["profile"] = ShapeProfile.from_dict(data["profile"])
        data["compute_capability"] = tuple(int(v) for v in data["compute_capability"])
        data["build"] = BuildOptions(**data.get("build", {}))
        data["scale"] = int(data["scale"])
        return cls(**data)

    def rebuild_command(self, plan: str | os.PathLike[str], profile: ShapeProfile | None = None) -> str:
        """The exact ``stylize-export engine`` command that rebuilds this engine (optionally another profile)."""
        return engine_command(self.onnx_path, plan, profile or self.profile, self.build)


def engine_command(onnx_path: str | os.PathLike[str], plan: str | os.PathLike[str], profile: ShapeProfile,
                   build: BuildOptions) -> str:
    args = ["stylize-export", "engine", str(onnx_path), str(plan)]
    if build.precision == "fp16":
        args.append("--fp16")
    if build.fp16_io:
        args.append("--fp16-io")
    args += profile.cli_args()
    if build.workspace_mib is not None:
        args += ["--workspace", str(build.workspace_mib)]
    if build.builder_optimization_level is not None:
        args += ["--builder-optimization-level", str(build.builder_optimization_level)]
    if build.timing_cache:
        args += ["--timing-cache", build.timing_cache]
    args += [flag for flag, on in (("--hardware-compatible", build.hardware_compatible),
                                   ("--version-compatible", build.version_compatible)) if on]
    if build.typing != "auto":
        args += ["--typing", build.typing]
    return shlex.join(args)


def sidecar_path(plan: str | os.PathLike[str]) -> Path:
    """``OUT.plan`` -> ``OUT.plan.json``."""
    plan = Path(plan)
    return plan.with_name(plan.name + SUFFIX)


def write_meta(plan: str | os.PathLike[str], meta: EngineMeta) -> Path:
    """Write the sidecar atomically (temporary name, then rename)."""
    path = sidecar_path(plan)
    tmp = partial_path(path)
    tmp.write_text(meta.to_json() + "\n")
    os.replace(tmp, path)
    return path


def _guess_command(plan: Path) -> str:
    # Without metadata the source is unknown; an ONNX next to the plan with the same stem is the best guess.
    sibling = plan.with_suffix(".onnx")
    src = str(sibling) if sibling.is_file() else "MODEL.onnx"
    return shlex.join(["stylize-export", "engine", src, str(plan), "--fp16"])


def read_meta(plan: str | os.PathLike[str]) -> EngineMeta:
    """Read ``OUT.plan.json``; a missing or unreadable sidecar is refused with a rebuild command."""
    plan = Path(plan)
    path = sidecar_path(plan)
    if not path.is_file():
        raise StylizeError(f"engine metadata {path} is missing, so {plan} cannot be checked against this "
                           f"GPU/TensorRT; rebuild it with: {_guess_command(plan)}")
    try:
        return EngineMeta.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise StylizeError(f"engine metadata {path} is unreadable ({type(exc).__name__}: {exc}); "
                           f"rebuild it with: {_guess_command(plan)}") from None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def check_compatible(meta: EngineMeta, env: RuntimeEnv, plan: str | os.PathLike[str],
                     input_shape: tuple[int, ...] | None = None) -> None:
    """Refuse an engine this machine cannot run, naming the command that rebuilds it here.

    * GPU: same name and compute capability, or any compute capability >= 8.0 for a hardware-compatible
      (Ampere+) engine;
    * TensorRT: the exact version, or any newer one for a version-compatible engine (TensorRT 11 loads
      version-compatible 10.x engines);
    * shape: ``input_shape`` (NCHW) inside the profile (the suggested command widens the profile).
    """
    plan = str(plan)
    where = f"engine {plan} was built for"
    if meta.build.hardware_compatible:
        if env.compute_capability < (8, 0):
            raise StylizeError(f"{where} Ampere or newer GPUs (hardware-compatible), this GPU {env.gpu_name} is "
                               f"sm_{env.compute_capability[0]}{env.compute_capability[1]}; "
                               f"rebuild it with: {meta.rebuild_command(plan)}")
    elif (meta.gpu_name, tuple(meta.compute_capability)) != (env.gpu_name, tuple(env.compute_capability)):
        raise StylizeError(f"{where} {meta.gpu_name} (sm_{meta.compute_capability[0]}{meta.compute_capability[1]}), "
                           f"this GPU is {env.gpu_name} (sm_{env.compute_capability[0]}{env.compute_capability[1]}); "
                           f"rebuild it with: {meta.rebuild_command(plan)}")
    built, here = _version_tuple(meta.tensorrt_version), _version_tuple(env.tensorrt_version)
    ok = here >= built if meta.build.version_compatible else here == built
    if not ok:
        kind = "TensorRT >= " if meta.build.version_compatible else "TensorRT "
        raise StylizeError(f"{where} {kind}{meta.tensorrt_version}, this machine has TensorRT {env.tensorrt_version}; "
                           f"rebuild it with: {meta.rebuild_command(plan)}")
    if input_shape is not None and not meta.profile.contains(tuple(input_shape)):
        shape = "x".join(str(v) for v in input_shape)
        raise StylizeError(f"input {shape} is outside the shape profile of {plan} ({meta.profile.describe()}, "
                           f"batch <= {meta.profile.max_batch}); rebuild it with: "
                           f"{meta.rebuild_command(plan, meta.profile.widened_to(tuple(input_shape)))}")


def check_build_fits(src_meta: Any, profile: ShapeProfile, build: BuildOptions) -> None:
    """Refuse, before TensorRT is touched, an engine its model cannot be: FP16 for an architecture that does
    not support it, or a profile that admits no size the network accepts (``src_meta``:
    ``stylize_video.export.metadata.ModelMetadata``; ``stylize_video.export.shapes.fit_profile`` makes one that does)."""
    if build.precision == "fp16" and not src_meta.supports_half:
        raise StylizeError(f"{src_meta.arch} does not support FP16 (spandrel: supports_half=False); "
                           f"build without --fp16")
    fit_profile(profile, src_meta.size_rules)
