"""Batch inputs: INPUT arguments (files, folders, globs) -> video files, and the output name of each.

An explicitly named file is taken whatever its extension (a missing one is reported at once; one that is not a
readable video when it is probed); a folder gives its files with a video extension (not its sub-folders); a
glob (``*``, ``?``, ``[``; ``**`` recurses) gives the matching files with a video extension. Each file's output
is ``OUT_DIR/<input stem><ext>``: the input's container when it is one we write and it can hold the output
codec, else ``.mkv`` (Matroska holds every codec we encode); ``--ext`` chooses. Without ``--codec`` each output
gets its container's default encoder, as with ``stylize-video`` (VP9 for WebM, libx264 elsewhere).

Folders and globs never give the batch's own files: its work folders, and its outputs (``own_outputs``), so
``in/ --out-dir in/ --ext mkv`` and ``'media/**/*.mp4' --out-dir media/out`` run again do not take what they
wrote as inputs. An output that would replace an input is refused before any work (``plan_outputs``).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.containers import default_video_codec, supported_codecs
from stylize_video.pipeline.io.sink import CONTAINERS

# what a folder or a glob contributes (an input named explicitly is taken whatever its extension)
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".mpg",
                              ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".mxf", ".nut", ".y4m", ".dv"})
FALLBACK_EXT = ".mkv"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One video to process: ``path`` absolute, ``arg`` the INPUT argument it came from, ``listed`` True when a
    folder or a glob gave it (False: named explicitly)."""

    path: Path
    arg: str
    listed: bool = False


@dataclass(frozen=True)
class BadInput:
    """An INPUT argument that gave no file (reported in the summary; the batch goes on)."""

    arg: str
    error: str


def expand_inputs(args: list[str], exclude: tuple[Path, ...] = ()) -> tuple[list[InputFile], list[BadInput]]:
    """Files, folders and globs -> (video files in argument order, each once; arguments that gave none, and
    files named explicitly that do not exist: "input not found").

    Folders and globs leave out files under ``exclude`` (the batch's work folders)."""
    skip = [e.absolute() for e in exclude]
    files: list[InputFile] = []
    bad: list[BadInput] = []
    seen: set[Path] = set()
    for arg in args:
        path = Path(arg).expanduser()
        listed = True
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _video(p, skip))
            if not found:
                bad.append(BadInput(arg, f"no video files in folder {arg}"))
        elif not path.exists() and _GLOB_CHARS & set(arg):
            found = sorted(p for p in map(Path, glob.glob(str(path), recursive=True)) if _video(p, skip))
            if not found:
                bad.append(BadInput(arg, f"no video file matches {arg}"))
        elif not path.exists() and not path.is_symlink():
            bad.append(BadInput(arg, f"input not found: {path.absolute()}"))
            continue
        else:
            found, listed = [path], False  # not a readable video: the probe says so, in stylize-video's words
        for p in found:
            p = p.absolute()
            if p not in seen:
                seen.add(p)
                files.append(InputFile(p, arg, listed))
    return files, bad


def _video(path: Path, exclude: list[Path]) -> bool:
    """A file with a video extension outside the ``exclude`` folders."""
    a = path.absolute()
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and not any(a.is_relative_to(e) for e in exclude)


def container_holds(ext: str, encoder: str | None) -> bool:
    """True if the container of ``ext`` (one of ``CONTAINERS``) can hold what ``encoder`` writes (None: its
    default encoder, which it always can)."""
    if encoder is None:
        return True
    held = supported_codecs(CONTAINERS[ext])
    return held is None or av.codec.Codec(encoder, "w").canonical_name in held


def output_extension(src: Path, encoder: str | None, ext: str | None) -> str:
    """``ext`` when given, else the input's extension when we write that container and it holds ``encoder``'s
    codec, else ``.mkv``."""
    if ext:
        return ext
    suffix = src.suffix.lower()
    if suffix in CONTAINERS and container_holds(suffix, encoder):
        return suffix
    return FALLBACK_EXT


def output_encoder(output: Path, encoder: str | None) -> str:
    """The encoder an output gets: ``encoder`` (``--codec``), else its container's default."""
    return encoder or default_video_codec(CONTAINERS[output.suffix.lower()])


def parse_ext(text: str) -> str:
    """``--ext`` value (``mkv`` or ``.mkv``) -> ``.mkv``; StylizeError for containers we do not write."""
    ext = text.lower() if text.startswith(".") else "." + text.lower()
    if ext not in CONTAINERS:
        raise StylizeError(f"--ext {text}: not a container we write; use one of {', '.join(CONTAINERS)}")
    return ext


def output_path(src: Path, out_dir: Path, encoder: str | None, ext: str | None) -> Path:
    """``OUT_DIR/<stem of src><ext>`` (absolute; the extension as ``output_extension`` chooses it)."""
    return out_dir.absolute() / (src.stem + output_extension(src, encoder, ext))


def own_outputs(files: list[InputFile], out_dir: Path, encoder: str | None, ext: str | None,
                recorded: frozenset[Path] = frozenset()) -> tuple[list[InputFile], list[BadInput]]:
    """Leave out the files a folder or glob gave that are this batch's outputs: the output of another of
    ``files``, or one in ``recorded`` (resolved paths: outputs an earlier run of this work folder wrote, of inputs
    not given now). Returns the rest, and a ``BadInput`` for each folder or glob left with no file. A file named
    explicitly is always kept (an output over it is refused by ``plan_outputs``)."""
    owners: dict[Path, set[Path]] = {}
    for f in files:
        owners.setdefault(output_path(f.path, out_dir, encoder, ext).resolve(), set()).add(f.path)
    kept = [f for f in files if not f.listed or not (f.path.resolve() in recorded or
                                                     owners.get(f.path.resolve(), set()) - {f.path})]
    bad = []
    for arg in dict.fromkeys(f.arg for f in files if f.listed):
        if not any(f.arg == arg for f in kept):
            what = f"no video files in folder {arg}" if Path(arg).expanduser().is_dir() else \
                f"no video file matches {arg}"
            bad.append(BadInput(arg, f"{what} other than this batch's outputs"))
    return kept, bad


def plan_outputs(files: list[InputFile], out_dir: Path, encoder: str | None, ext: str | None) -> dict[Path, Path]:
    """Input path -> output path for every file; StylizeError (before any work) when two inputs map to the same
    output (compared case-insensitively: the names must differ on any file system) or an output is an input."""
    outputs: dict[Path, Path] = {}
    owner: dict[str, Path] = {}
    inputs = {f.path.resolve() for f in files}
    for f in files:
        out = output_path(f.path, out_dir, encoder, ext)
        key = str(out).casefold()
        if key in owner:
            raise StylizeError(f"{owner[key]} and {f.path} would both be written to {out}; rename one or run them "
                               "into different --out-dir folders")
        if out.resolve() in inputs:
            raise StylizeError(f"output {out} would overwrite an input; choose another --out-dir or --ext")
        owner[key] = f.path
        outputs[f.path] = out
    return outputs
