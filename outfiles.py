"""Output files, as every stage writes them: checked before any work, written atomically, never too long a name.

- :func:`check_output`: an existing file is refused unless ``--overwrite``; the folder must exist and a file must
  really be creatable there (a temporary one is created and removed); names the file system refuses are one line.
- :func:`check_distinct`: an output that is an input (or lies in an input folder) or that another output names.
- :func:`write_atomic`: a hidden temporary file beside the output, renamed when complete (umask honoured). An
  existing FIFO or device (``/dev/null``, ``/dev/stdout``, a shell's ``>(cmd)``) is written in place, never
  replaced (:func:`writes_in_place`).
- :func:`partial_name` / :func:`rename_partial`: what an interrupted run keeps (``out.partial.mp4``; an existing
  file is never replaced without ``--overwrite``: ``out.partial-2.mp4``, ... instead).
- :func:`fit_name` / :func:`partial_path`: temporary names within the file system's name limit (NAME_MAX, 255
  bytes on common file systems), so every final name that fits can be written.

``stylize_video.cliargs`` re-exports these for the console scripts. Errors: ``StylizeError`` (one line).
Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from stylize_video.errors import StylizeError

STDOUT = "-"  # "--json -": standard output, not a file


def write_atomic(path: str | os.PathLike[str], data: bytes, *, partial: bool = False,
                 overwrite: bool = False) -> Path:
    """Write ``data`` to a hidden temporary file beside ``path`` and rename it to ``path``; StylizeError on failure.
    Returns the path written.

    ``partial``: the file belongs to an interrupted run: it goes to ``path``'s partial name instead
    (:func:`rename_partial`: never replacing a file unless ``overwrite``). The file honours the umask like any
    other output (0644 with umask 022). An existing FIFO or device (``/dev/null``, ``/dev/stdout``, a shell's
    ``>(cmd)``) is written in place instead: it is never replaced.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        if writes_in_place(path):
            with open(path, "ab") as fh:  # append: a file behind /dev/stdout keeps what was printed before
                fh.write(data)
            return path
        tmp, fh = create_temp(path, "partial")
        with fh:
            fh.write(data)
        if partial:
            return rename_partial(tmp, path, overwrite=overwrite)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise StylizeError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# what an interrupted run keeps ---------------------------------------------------------------------------------


def partial_name(path: str | os.PathLike[str], n: int = 1) -> Path:
    """``out.mp4`` -> ``out.partial.mp4`` (``n`` > 1: ``out.partial-N.mp4``): the name of what an interrupted run
    kept; the stem shortened, with a hash, where that would pass NAME_MAX."""
    path = Path(path)
    tag = ".partial" if n == 1 else f".partial-{n}"
    return path.with_name(fit_name(path.stem, after=f"{tag}{path.suffix}", folder=path.parent))


def rename_partial(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Rename the finished temporary file ``tmp`` to ``path``'s partial name and return it.

    An existing file is never replaced unless ``overwrite`` (it may be the user's, or what an earlier interrupted
    run kept): the first free one of ``out.partial.mp4``, ``out.partial-2.mp4``, ... is taken. A hard link makes
    taking the name atomic (``link`` fails on an existing name, ``rename`` would replace it); where the file
    system has no hard links, the name is checked first. Errors: OSError.
    """
    tmp = Path(tmp)
    if overwrite:
        final = partial_name(path)
        os.replace(tmp, final)
        return final
    for n in range(1, 10_000):
        final = partial_name(path, n)
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network and FUSE file systems)
            if os.path.lexists(final):
                continue
            os.replace(tmp, final)
            return final
        tmp.unlink()
        return final
    raise OSError(errno.EEXIST, "no free name for the partial output", str(path))


# temporary names -----------------------------------------------------------------------------------------------

_NAME_MAX = 255  # bytes per path component on Linux, macOS and Windows file systems; pathconf() says when it can


def _name_max(folder: str | os.PathLike[str] | None) -> int:
    try:
        return int(os.pathconf(folder or ".", "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no such folder (yet), no pathconf (Windows)
        return _NAME_MAX


def fit_name(name: str, *, before: str = "", after: str = "", folder: str | os.PathLike[str] | None = None) -> str:
    """``before + name + after``, with ``name`` shortened when the whole would pass the file system's name limit.

    A shortened ``name`` keeps its beginning and gains ``~`` + 8 hex digits of its SHA-1, so two long names stay
    two temporary names. The limit is ``NAME_MAX`` of ``folder`` (bytes, 255 on common file systems).
    """
    limit = _name_max(folder)
    whole = before + name + after
    if len(os.fsencode(whole)) <= limit:
        return whole
    tag = "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    room = limit - len(os.fsencode(before + tag + after))
    keep = name
    while keep and len(os.fsencode(keep)) > room:  # by characters: never half of a UTF-8 sequence
        keep = keep[:-1]
    return before + keep + tag + after


def partial_path(path: str | os.PathLike[str]) -> Path:
    """``NAME.partial`` beside ``path``: where a file is written before its rename, within the name limit."""
    path = Path(path)
    return path.with_name(fit_name(path.name, after=".partial", folder=path.parent))


def create_temp(path: Path, tag: str) -> tuple[Path, IO[bytes]]:
    """Create ``.NAME.PID-RANDOM.TAG`` beside ``path`` (new, umask-honouring, open for writing); OSError on failure."""
    for _ in range(100):
        after = f".{os.getpid()}-{secrets.token_hex(4)}.{tag}"
        tmp = path.with_name(fit_name(path.name, before=".", after=after, folder=path.parent))
        try:
            return tmp, open(tmp, "xb")
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free temporary name", str(path))


def writes_in_place(path: str | os.PathLike[str]) -> bool:
    """True for an output that is written in place, never replaced: an existing FIFO, device or socket
    (``/dev/null``, a shell's ``>(cmd)``), or an existing file reached through a link in ``/dev`` or a
    process's ``fd`` folder (``/dev/stdout``, ``/dev/fd/N`` redirected to a file): a temporary file and a rename
    there would replace the link itself. Symlinks are followed."""
    mode = _mode(Path(path))
    if mode is None or stat.S_ISDIR(mode):
        return False
    if not stat.S_ISREG(mode):
        return True
    parent = os.path.realpath(Path(path).parent)  # /dev/fd -> /proc/self/fd -> /proc/<pid>/fd
    return parent == "/dev" or (parent.startswith("/proc/") and parent.endswith("/fd"))


def check_output(path: str | os.PathLike[str] | None, *, overwrite: bool, flag: str | None = None) -> None:
    """Refuse, before any work, an output file that exists (unless ``overwrite``) or cannot be created.

    ``None`` and ``-`` (stdout) pass; so does an existing FIFO or device (written in place, see
    :func:`write_atomic`). The folder must exist, and a file must really be creatable there (a temporary one is
    created and removed: read-only file systems and ``/proc`` are caught even as root). A folder given where a
    file is expected, and a name the file system refuses (too long), are refused. ``flag`` (e.g. ``"--json"``)
    prefixes the message. Errors: ``StylizeError``. A failure after the work (disk full) is still possible.
    """
    if path is None or str(path) == STDOUT:
        return
    path = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    try:
        mode: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder is looked at below
        mode = None
    except OSError as exc:  # a name too long, a loop of links
        raise StylizeError(f"cannot write {where}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise StylizeError(f"{where} is a directory")
    if writes_in_place(path):  # a FIFO, a device, /dev/stdout: nothing is replaced, so no --overwrite needed
        if not os.access(path, os.W_OK):
            raise StylizeError(f"cannot write {where}: permission denied")
        return
    if mode is not None and not overwrite:
        raise StylizeError(f"{where} exists; pass --overwrite to replace it")
    parent = path.parent
    if not _is_dir(parent):
        raise StylizeError(f"{where}: folder does not exist: {parent}")
    try:
        tmp, fh = create_temp(path, "probe")
        fh.close()
        tmp.unlink()
    except OSError as exc:
        raise StylizeError(f"{where}: cannot create files in {parent}: {exc.strerror or exc}") from None


Named = tuple[str, "str | os.PathLike[str] | None"]


def check_distinct(*, inputs: Iterable[Named] = (), outputs: Iterable[Named]) -> None:
    """Refuse, before any work, an output that would replace an input or that another output also names.

    ``inputs`` / ``outputs``: ``(label, path)`` pairs; the label is the flag (``"--json"``) or ``""`` for a
    positional; ``None`` and ``-`` are skipped (pass only local paths, not URLs). Paths are compared resolved
    (symlinks, ``..``) and, where both exist, as files (``os.path.samefile``: hard links too). An input folder
    (``--data``) protects the existing files inside it; an output folder (a training run's ``checkpoints/``)
    may not hold an input. Outputs written in place (:func:`writes_in_place`: FIFOs, devices) are not checked.
    Errors: ``StylizeError`` (one line: "would overwrite the input ..." / "two outputs share PATH").
    """
    ins = [(label, Path(p)) for label, p in inputs if p is not None and str(p) != STDOUT]
    outs = [(label, Path(p)) for label, p in outputs
            if p is not None and str(p) != STDOUT and not writes_in_place(p)]  # those replace nothing
    for o_label, out in outs:
        for i_label, src in ins:
            if _same(out, src):
                raise StylizeError(f"{_named(o_label, out)} would overwrite the input {_named(i_label, src)}")
            if _is_dir(src) and _inside(out, src) and _mode(out) is not None:
                raise StylizeError(f"{_named(o_label, out)} would overwrite a file in the input folder "
                                   f"{_named(i_label, src)}")
            if _is_dir(out) and _inside(src, out):
                raise StylizeError(f"the input {_named(i_label, src)} is inside the output folder "
                                   f"{_named(o_label, out)}")
    for k, (a_label, a) in enumerate(outs):
        for b_label, b in outs[k + 1:]:
            if _same(a, b):
                raise StylizeError(f"two outputs share {a} ({_named(a_label, a)} and {_named(b_label, b)})")


def _mode(path: Path) -> int | None:
    """``st_mode`` (symlinks followed), None when it does not exist or cannot be looked at."""
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def _is_dir(path: Path) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def _named(label: str, path: Path) -> str:
    return f"{label} {path}" if label else str(path)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links, a name too long: compare as written
        return path.absolute()


def _same(a: Path, b: Path) -> bool:
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (yet)
        return False


def _inside(path: Path, folder: Path) -> bool:
    return _resolved(path).is_relative_to(_resolved(folder)) and _resolved(path) != _resolved(folder)
