"""The command-line conventions every console script shares (stylize-train, -export, -video, -bench, -batch).

One definition of each shared flag and of what it does, so the scripts cannot drift apart:

- ``--json PATH``: machine-readable output, written atomically (:func:`write_json`); ``-`` is stdout, and then
  stdout holds that JSON document and nothing else. On a command without positional arguments ``--json``
  alone means ``--json -`` (:func:`add_json_option`).
- ``--device auto|cpu|cuda|cuda:N``: the spelling is checked by argparse (exit 2, :func:`device_arg`), whether
  this machine has that device by :func:`resolve_device` (one ``error:`` line, exit 1), before any work.
- ``--overwrite``: an existing output is refused before any work unless it is given (:func:`check_output`).
- ``--quiet``/``-q``: no progress and no summary; errors and warnings still go to stderr.
- Progress: a tqdm bar on stderr, only when stderr is a terminal and ``--quiet`` is off (:func:`progress_bar`).
- Exit codes: :data:`EXIT_OK`, :data:`EXIT_ERROR` (``PROG: error: ...``, from ``errors.run_cli``),
  :data:`EXIT_USAGE` (argparse), :data:`EXIT_PARTIAL` (a batch where some inputs failed),
  :data:`EXIT_INTERRUPTED` (Ctrl-C).

Nothing heavy is imported at module level: ``--help`` of every script stays fast (torch and tqdm load lazily).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stylize_video.errors import StylizeError

if TYPE_CHECKING:
    import torch
    from tqdm import tqdm

EXIT_OK = 0
EXIT_ERROR = 1  # StylizeError: one "PROG: error: ..." line (errors.run_cli)
EXIT_USAGE = 2  # argparse: usage line + "PROG: error: ..."
EXIT_PARTIAL = 3  # batch commands: at least one input failed, the others were written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

STDOUT = "-"
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


# --json ------------------------------------------------------------------------------------------------------


def add_json_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, positional_free: bool,
                    help: str = "write the result as JSON to PATH (- for stdout)",
                    aliases: tuple[str, ...] = ()) -> None:
    """Add ``--json PATH`` (``dest="json"``, default None); ``-`` means stdout.

    ``positional_free``: the command takes no positional argument, so ``--json`` may stand alone and then means
    stdout (with positionals, ``--json in.mp4`` would be ambiguous, so PATH is required there).
    ``aliases``: older spellings kept working but hidden from ``--help`` (e.g. ``--stats-json``).
    """
    extra: dict[str, Any] = {"nargs": "?", "const": STDOUT} if positional_free else {}
    if positional_free:
        help = f"{help}; --json alone: stdout"
    parser.add_argument("--json", dest="json", metavar="PATH", default=None, help=help, **extra)
    for alias in aliases:
        parser.add_argument(alias, dest="json", metavar="PATH", help=argparse.SUPPRESS)


def json_to_stdout(path: str | os.PathLike[str] | None) -> bool:
    """True when a ``--json`` value means stdout."""
    return path is not None and str(path) == STDOUT


def write_json(data: Any, path: str | os.PathLike[str]) -> None:
    """Write ``data`` as indented JSON to ``path``, or to stdout for ``-``; NaN and +-inf become ``null``.

    A file is written under a temporary name in its folder and renamed when complete, so a half-written
    file never carries the final name; on failure nothing is left behind. Errors: ``StylizeError``.
    """
    text = json.dumps(_finite(data), indent=2, allow_nan=False) + "\n"
    if json_to_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(Path(path), text.encode("utf-8"))


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``.NAME.*.partial`` beside ``path`` and rename it to ``path``; StylizeError on failure."""
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise StylizeError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# --overwrite -------------------------------------------------------------------------------------------------


def add_overwrite_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                         help: str = "replace an existing output (refused otherwise, before any work)") -> None:
    """Add ``--overwrite`` (``dest="overwrite"``, default False)."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def check_output(path: str | os.PathLike[str] | None, *, overwrite: bool, flag: str | None = None) -> None:
    """Refuse, before any work, an output file that exists (unless ``overwrite``) or cannot be created.

    ``None`` and ``-`` (stdout) pass. The folder must exist and be writable; a folder given where a file is
    expected is refused. ``flag`` (e.g. ``"--json"``) prefixes the message. Errors: ``StylizeError``.
    """
    if path is None or json_to_stdout(path):
        return
    path = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    if path.is_dir():
        raise StylizeError(f"{where} is a directory")
    if path.exists() and not overwrite:
        raise StylizeError(f"{where} exists; pass --overwrite to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise StylizeError(f"{where}: folder does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StylizeError(f"{where}: folder is not writable: {parent}")


# --device ----------------------------------------------------------------------------------------------------


def device_arg(text: str) -> str:
    """argparse ``type=`` for ``--device``: the spelling only (machine checks come in :func:`resolve_device`)."""
    if _DEVICE.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"expected {DEVICE_CHOICES}, got {text!r}")


def add_device_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, default: str = "auto",
                      help: str | None = None) -> None:
    """Add ``--device`` (``dest="device"``): auto (CUDA when available), cpu, cuda or cuda:N."""
    parser.add_argument("--device", default=default, type=device_arg, metavar="DEVICE",
                        help=help or f"{DEVICE_CHOICES} (default {default}: CUDA when available, else the CPU)")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; refuse a CUDA device this machine does not have.

    Errors: ``StylizeError`` (one line naming ``--device``) for a bad spelling, no usable CUDA, or an ordinal
    past ``torch.cuda.device_count()``.
    """
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, torch.device) and not _DEVICE.fullmatch(str(device)):
        raise StylizeError(f"--device must be {DEVICE_CHOICES}, got {str(device)!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StylizeError(f"--device {device} asked for, but this PyTorch has no usable CUDA device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise StylizeError(f"--device {dev}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


# --quiet and progress ----------------------------------------------------------------------------------------


def add_quiet_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                     help: str = "no progress and no summary (errors and warnings still go to stderr)") -> None:
    """Add ``-q``/``--quiet`` (``dest="quiet"``, default False)."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help)


def progress_enabled(quiet: bool, stream: IO[str] | None = None) -> bool:
    """Progress is drawn only on a terminal (stderr by default) and only without ``--quiet``."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not quiet and bool(isatty and isatty())


def progress_bar(iterable: Iterable[Any] | None = None, *, quiet: bool, total: int | None = None,
                 desc: str | None = None, unit: str = "it", **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr (over ``iterable`` if given), disabled (a no-op) unless :func:`progress_enabled`."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=not progress_enabled(quiet), **kwargs)
