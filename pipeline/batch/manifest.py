"""The work folder's manifest: what is finished, under which settings, so that a re-run does only the rest.

``manifest.json`` holds three tables, each keyed by a digest of everything its entry depends on:

- ``plans``: input identity (path, size, mtime) + segment length -> the input's segments (a re-run skips the probe);
- ``segments``: input identity + the segment's range + every setting that changes its pixels or bits (model
  file *content*, backend, device type, precision, compile mode, encoder options, rotation, histogram matching,
  NVDEC, tiling, the ONNX convention) -> the finished segment file, its size and packet count as written (a
  file changed since is not reused);
- ``outputs``: output path -> digest of its segments + the join settings (container, audio, subtitles) and the
  file's size and mtime when we wrote it.

So a changed model or encoder option invalidates the segments (and through them the output); a changed
``--no-audio`` only the join; a changed input file everything of that input; ``--workers``, ``--ray`` or
``--quiet`` nothing. Only the driver writes the manifest (workers report back to it), always atomically. Lock
files keep a second ``stylize-batch`` off the same work folder and off the same output folder. A manifest that is
not ours (not JSON, or JSON of another shape) is refused with one line; another version's is started over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.worker import write_json_atomic

MANIFEST_NAME = "manifest.json"
LOCK_NAME = "lock"
VERSION = 1


def digest(*parts: object) -> str:
    """A short stable digest of JSON-able ``parts`` (16 hex digits)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_identity(path: Path) -> list:
    """What says a file is unchanged without reading it: absolute path, size, modification time (ns)."""
    st = path.stat()
    return [str(path.absolute()), st.st_size, st.st_mtime_ns]


def content_digest(path: Path) -> str:
    """sha256 of a file's bytes (model files: a file replaced in place keeps its name, not its content)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Manifest:
    """``manifest.json`` in ``work_dir``: ``plans`` / ``segments`` / ``outputs`` tables (see the module docstring)."""

    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / MANIFEST_NAME
        self.data: dict = {"version": VERSION, "plans": {}, "segments": {}, "outputs": {}}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise StylizeError(f"{self.path} is unreadable ({exc}); remove it to start over") from None
            problem = _problem(loaded)
            if problem:
                raise StylizeError(f"{self.path} is unreadable ({problem}); remove it to start over")
            if loaded["version"] == VERSION:  # (another version's manifest: started over)
                self.data = loaded

    @property
    def plans(self) -> dict:
        return self.data["plans"]

    @property
    def segments(self) -> dict:
        return self.data["segments"]

    @property
    def outputs(self) -> dict:
        return self.data["outputs"]

    def segment_done(self, key: str, path: Path) -> bool:
        """Recorded as finished and its files are as the worker wrote them: the segment file of the size it had,
        its timing sidecar readable and naming as many packets (a file emptied, cut short or replaced since is
        not finished: it runs again)."""
        from stylize_video.pipeline.batch.worker import BadSegment, read_timing

        entry = self.segments.get(key)
        if entry is None or not path.is_file() or path.stat().st_size != entry.get("size"):
            return False
        try:
            return len(read_timing(path)["pts"]) == entry.get("packets")
        except BadSegment:
            return False

    def output_done(self, path: Path, key: str) -> bool:
        """``path`` is the file this manifest recorded for ``key``, untouched since (same size and mtime)."""
        entry = self.outputs.get(str(path))
        if entry is None or entry["key"] != key or not path.is_file():
            return False
        st = path.stat()
        return [st.st_size, st.st_mtime_ns] == [entry["size"], entry["mtime_ns"]]

    def record_output(self, path: Path, key: str) -> None:
        st = path.stat()
        self.outputs[str(path)] = {"key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def save(self) -> None:
        try:
            write_json_atomic(self.path, self.data)
        except OSError as exc:
            raise StylizeError(f"cannot write {self.path}: {exc.strerror or exc}") from None


# what the code reads from each entry of a table (see the module docstring)
_ENTRY = {"plans": {"segments": list}, "segments": {"frames": int},
          "outputs": {"key": str, "size": int, "mtime_ns": int}}


def _problem(data: object) -> str | None:
    """What makes ``data`` no manifest of ours (None: it is one, of this version or another)."""
    if not isinstance(data, dict) or type(data.get("version")) is not int:
        return "not a stylize-batch manifest"
    if data["version"] != VERSION:
        return None
    for table, fields in _ENTRY.items():
        entries = data.get(table)
        if not isinstance(entries, dict):
            return f"no {table!r} table"
        for key, entry in entries.items():
            if not isinstance(entry, dict) or not all(isinstance(entry.get(f), t) for f, t in fields.items()):
                return f"{table} entry {key!r} is not a stylize-batch entry"
    return None


DEFAULT_WORK = ".stylize-batch"  # the work folder in OUT_DIR by default; holds OUT_DIR's lock in any case


@contextlib.contextmanager
def locked(work_dir: Path, out_dir: Path | None = None) -> Iterator[None]:
    """Hold exclusive locks (POSIX ``flock``) on ``out_dir`` (its lock file is ``out_dir/.stylize-batch/lock``:
    two runs writing one output folder with different work folders would write the same outputs) and on
    ``work_dir``; StylizeError if another run holds either. A folder made for a lock is removed on leaving when
    the run left nothing in it but the lock (it was refused before any work): no trace of a refused run."""
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            stack.enter_context(_flock(out_dir.absolute() / DEFAULT_WORK, f"--out-dir {out_dir}"))
        if out_dir is None or work_dir.absolute() != out_dir.absolute() / DEFAULT_WORK:
            stack.enter_context(_flock(work_dir, f"work folder {work_dir}"))
        yield


@contextlib.contextmanager
def _flock(folder: Path, what: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock (one run per folder is then the user's job)
        yield
        return
    made = _make_folders(folder)
    with open(folder / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StylizeError(f"{what} is in use by another stylize-batch run") from None
        try:
            yield
        finally:
            if made:
                _remove_if_bare(folder, made)  # (the lock file goes while still held)
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_if_bare(folder: Path, made: list[Path]) -> None:
    """Remove ``folder``'s lock file and the folders in ``made`` (outermost first) when the lock file is all that
    ``folder`` holds; a folder that holds anything else (the output folder's outputs) stays."""
    with contextlib.suppress(OSError):
        if [p.name for p in folder.iterdir()] != [LOCK_NAME]:
            return
        (folder / LOCK_NAME).unlink()
        for p in reversed(made):
            p.rmdir()


def _make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it made, outermost first."""
    made, p = [], folder.absolute()
    while not p.exists():
        made.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise StylizeError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    return made[::-1]


def remove_stale(work_dir: Path) -> int:
    """Delete files a killed worker left under a temporary name (``*.inprogress``); returns how many."""
    n = 0
    for p in work_dir.rglob("*.inprogress"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def remove_empty_folders(folder: Path) -> None:
    """Remove the empty sub-folders of ``folder`` (segment folders of inputs that failed or were joined), then
    ``folder`` itself if it is left empty."""
    if not folder.is_dir():
        return
    for sub in folder.iterdir():
        if sub.is_dir():
            with contextlib.suppress(OSError):  # (not empty)
                sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


__all__ = ["Manifest", "content_digest", "digest", "file_identity", "locked", "remove_empty_folders", "remove_stale"]
