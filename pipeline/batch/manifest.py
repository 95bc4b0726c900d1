"""The work folder's manifest: what is finished, under which settings, so that a re-run does only the rest.

``manifest.json`` holds three tables, each keyed by a digest of everything its entry depends on:

- ``plans``: input identity (path, size, mtime) + segment length -> the input's segments (a re-run skips the probe);
- ``segments``: input identity + the segment's range + every setting that changes its pixels or bits (model
  file *content*, backend, device type, precision, compile mode, encoder options, rotation, histogram matching,
  NVDEC) -> the finished segment file;
- ``outputs``: output path -> digest of its segments + the join settings (container, audio, subtitles) and the
  file's size and mtime when we wrote it.

So a changed model or encoder option invalidates the segments (and through them the output); a changed
``--no-audio`` only the join; a changed input file everything of that input; ``--workers``, ``--ray`` or
``--quiet`` nothing. Only the driver writes the manifest (workers report back to it), always atomically. A lock
file keeps a second ``stylize-batch`` off the same work folder.
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
            if loaded.get("version") == VERSION:
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
        """Recorded as finished and its files are still there."""
        from stylize_video.pipeline.batch.worker import timing_path

        return key in self.segments and path.is_file() and timing_path(path).is_file()

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


@contextlib.contextmanager
def locked(work_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``work_dir`` (POSIX ``flock``); StylizeError if another run holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock (one run per work folder is then the user's job)
        yield
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StylizeError(f"work folder {work_dir} is in use by another stylize-batch run") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_stale(work_dir: Path) -> int:
    """Delete files a killed worker left under a temporary name (``*.inprogress``); returns how many."""
    n = 0
    for p in work_dir.rglob("*.inprogress"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


__all__ = ["Manifest", "content_digest", "digest", "file_identity", "locked", "remove_stale"]
