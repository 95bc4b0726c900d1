"""The command-line conventions every console script shares (stylize-train, -export, -video, -bench, -batch).

One definition of each shared flag and of what it does, so the scripts cannot drift apart:

- ``--json PATH``: machine-readable output, written atomically (:func:`write_json`); ``-`` is stdout, and then
  stdout holds that JSON document and nothing else. On a command without positional arguments ``--json``
  alone means ``--json -`` (:func:`add_json_option`).
- ``--device auto|cpu|cuda|cuda:N``: the spelling is checked by argparse (exit 2, :func:`device_arg`), whether
  this machine has that device by :func:`resolve_device` (one ``error:`` line, exit 1), before any work.
- ``--overwrite``: an existing output is refused before any work unless it is given (:func:`check_output`); an
  output that is an input or another output is refused whatever the flags (:func:`check_distinct`). Existing
  FIFOs and devices (``/dev/null``, ``/dev/stdout``, ``>(cmd)``) are written in place, never replaced.
- Numbers: every float option parses with :func:`number` (finite, optional bounds), every integer option with
  :func:`integer` (optional bounds); a value out of range is an argparse error, exit 2.
- ``--quiet``/``-q``: no progress and no summary; errors and warnings still go to stderr.
- Progress: a tqdm bar on stderr, only when stderr is a terminal and ``--quiet`` is off (:func:`progress_bar`).
- Exit codes: :data:`EXIT_OK`, :data:`EXIT_ERROR` (``PROG: error: ...``, from ``errors.run_cli``),
  :data:`EXIT_USAGE` (argparse), :data:`EXIT_PARTIAL` (a batch where some inputs failed),
  :data:`EXIT_INTERRUPTED` (Ctrl-C), :data:`EXIT_TERMINATED` (SIGTERM, handled like Ctrl-C).

Output files (``stylize_video.outfiles``, re-exported here): written under a temporary name in their folder and
renamed when complete (:func:`write_atomic`), temporary names within the file system's name limit (:func:`fit_name`).

Nothing heavy is imported at module level: ``--help`` of every script stays fast (torch and tqdm load lazily).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stylize_video.errors import StylizeError

# Output files (checked before work, written atomically, names within NAME_MAX): one home, used by every stage;
# re-exported here, where the console scripts find every shared convention.
from stylize_video.outfiles import (  # noqa: F401
    STDOUT,
    check_distinct,
    check_output,
    fit_name,
    partial_name,
    partial_path,
    rename_partial,
    write_atomic,
    writes_in_place,
)

if TYPE_CHECKING:
    import torch
    from tqdm import tqdm

EXIT_OK = 0
EXIT_ERROR = 1  # StylizeError: one "PROG: error: ..." line (errors.run_cli)
EXIT_USAGE = 2  # argparse: usage line + "PROG: error: ..."
EXIT_PARTIAL = 3  # batch commands: at least one input failed, the others were written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): timeout, systemd, docker stop (errors.run_cli handles it like Ctrl-C)

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
    parser.add_argument("--json", dest="json", metavar="PATH", default=None, help=help, action=_JsonAction, **extra)
    for alias in aliases:
        parser.add_argument(alias, dest="json", metavar="PATH", help=argparse.SUPPRESS, action=_JsonAction)


class _JsonAction(argparse.Action):
    """Store ``--json PATH``; an old alias and ``--json`` both given is a usage error (only one file is written)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        first = getattr(namespace, "_json_flag", None)
        if first is not None and first != option_string:
            parser.error(f"{first} and {option_string} both given: they name the same output; give only --json")
        namespace._json_flag = option_string
        setattr(namespace, self.dest, values)


def json_to_stdout(path: str | os.PathLike[str] | None) -> bool:
    """True when a ``--json`` value means stdout."""
    return path is not None and str(path) == STDOUT


def write_json(data: Any, path: str | os.PathLike[str], *, partial: bool = False,
               overwrite: bool = False) -> str | Path:
    """Write ``data`` as indented JSON to ``path``, or to stdout for ``-``; NaN and +-inf become ``null``.
    Returns where it went (``-`` or the file).

    A file is written under a temporary name in its folder and renamed when complete, so a half-written
    file never carries the final name; on failure nothing is left behind. ``partial`` (the summary of an
    interrupted run): the file goes to ``s.partial.json`` beside ``s.json`` (``s.partial-2.json``, ... where that
    exists, unless ``overwrite``), so that the same command can run again. Errors: ``StylizeError``.
    """
    text = json.dumps(_finite(data), indent=2, allow_nan=False) + "\n"
    if json_to_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return STDOUT
    return write_atomic(Path(path), text.encode("utf-8"), partial=partial, overwrite=overwrite)


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# --version ---------------------------------------------------------------------------------------------------


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--version``: ``PROG VERSION`` (the installed stylize-video's) on stdout, exit 0."""
    from stylize_video import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


# --overwrite -------------------------------------------------------------------------------------------------


def add_overwrite_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                         help: str = "replace an existing output (refused otherwise, before any work)") -> None:
    """Add ``--overwrite`` (``dest="overwrite"``, default False)."""
    parser.add_argument("--overwrite", action="store_true", help=help)


# numbers -------------------------------------------------------------------------------------------------------


def number(*, ge: float | None = None, gt: float | None = None) -> Callable[[str], float]:
    """argparse ``type=`` for a float option: finite (NaN and infinity refused), ``>= ge`` / ``> gt`` when given.

    A refused value is a usage error (exit 2): ``PROG: error: argument --lr: must be > 0, got 'nan'``.
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if ge is not None and value < ge:
            raise argparse.ArgumentTypeError(f"must be >= {ge:g}, got {text!r}")
        if gt is not None and not value > gt:
            raise argparse.ArgumentTypeError(f"must be > {gt:g}, got {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def integer(*, ge: int | None = None, gt: int | None = None, le: int | None = None) -> Callable[[str], int]:
    """argparse ``type=`` for an integer option: ``>= ge`` / ``> gt`` / ``<= le`` when given.

    A refused value is a usage error (exit 2): ``PROG: error: argument --workers: must be >= 1, got '0'``.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if ge is not None and value < ge:
            raise argparse.ArgumentTypeError(f"must be >= {ge}, got {text!r}")
        if gt is not None and not value > gt:
            raise argparse.ArgumentTypeError(f"must be > {gt}, got {text!r}")
        if le is not None and value > le:
            raise argparse.ArgumentTypeError(f"must be <= {le}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def parsed_by(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse ``type=`` from a parser that raises ``StylizeError`` (e.g. a size list): its message becomes a
    usage error (exit 2), ``PROG: error: argument --sizes: bad size '0x0': ...``."""
    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except StylizeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = getattr(parse, "__name__", "value")
    return wrapped


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
