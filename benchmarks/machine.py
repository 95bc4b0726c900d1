"""What the benchmark ran on: GPU, driver, CUDA, library versions, CPU. Nothing here imports TensorRT."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Capabilities:
    """What this process can run, probed once per benchmark run."""

    cuda: bool
    ort_providers: tuple[str, ...]
    tensorrt: bool
    gpu: str = "cuda"  # the torch device GPU variants run on (--device cuda:N)
    no_gpu_reason: str = "no CUDA device (torch.cuda.is_available() is False)"  # why, when ``cuda`` is False

    @staticmethod
    def probe(device: str = "auto") -> Capabilities:
        """``device`` is ``--device``: cpu skips every GPU variant, cuda:N runs them on GPU N; a GPU this
        machine lacks is a StylizeError (``cliargs.resolve_device``)."""
        from stylize_video.cliargs import resolve_device

        dev = resolve_device(device)
        ort, trt = tuple(_ort_providers()), package_version("tensorrt") is not None or _importable("tensorrt")
        if device == "cpu":
            return Capabilities(cuda=False, ort_providers=ort, tensorrt=trt, no_gpu_reason="--device cpu given")
        return Capabilities(cuda=torch.cuda.is_available(), ort_providers=ort, tensorrt=trt,
                            gpu=str(dev) if dev.type == "cuda" else "cuda")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def package_version(name: str) -> str | None:
    """Installed distribution version without importing it (TensorRT's import alone takes seconds)."""
    for dist in (name, f"{name}-cu13", f"{name}-cu12", f"{name}-gpu", f"{name}_cu13", f"{name}_cu12"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _nvidia_smi(field: str) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0].strip() if out.strip() else None


def _gpu_info() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    idx = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(idx)
    return {
        "name": props.name,
        "index": idx,
        "memory_mb": round(props.total_memory / 2**20),
        "compute_capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "driver": _nvidia_smi("driver_version"),
        "mig": _nvidia_smi("mig.mode.current"),
    }


def _pyav_ffmpeg() -> str | None:
    try:
        import av
    except ImportError:
        return None
    major, minor, micro = av.library_versions.get("libavcodec", (0, 0, 0))
    return f"libavcodec {major}.{minor}.{micro}"


def collect_machine(label: str | None = None) -> dict[str, Any]:
    """The ``machine`` record of the result JSON (see ``schema.json``)."""
    gpu = _gpu_info()
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {
        "label": label or default_label(gpu),
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": {"model": _cpu_model(), "count": _usable_cpus(), "logical_total": os.cpu_count() or 1},
        "gpu": gpu,
        "cuda": {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda,
                 "cudnn": str(cudnn) if cudnn else None},
        "versions": {
            "torch": torch.__version__,
            "torchvision": package_version("torchvision"),
            "onnxruntime": package_version("onnxruntime"),
            "tensorrt": package_version("tensorrt"),
            "av": package_version("av"),
            "ffmpeg": _pyav_ffmpeg(),
            "numpy": package_version("numpy"),
        },
        "onnxruntime_providers": _ort_providers(),
        "load_average": _load_average(),
    }


def _load_average() -> list[float] | None:
    """1/5/15-minute load when the record is made: a busy shared machine shows here."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # not on this OS
        return None


def default_label(gpu: dict[str, Any] | None) -> str:
    """Folder-friendly machine name: ``h100-80gb-hbm3`` style from the GPU, else ``cpu-<n>core``."""
    if gpu is not None:
        name = str(gpu["name"]).lower().replace("nvidia", "").strip()
        return "-".join(name.replace("_", " ").split())
    return f"cpu-{_usable_cpus()}core"
