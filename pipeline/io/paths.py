"""Local file names as FFmpeg sees them, and the temporary names outputs are written under.

FFmpeg reads ``name:rest`` as protocol ``name`` whenever ``name`` is made of letters, digits, ``+ - .``
(libavformat/avio.c ``url_find_protocol``): ``2024-05-01T10:30:00.mp4`` asks for a protocol
``2024-05-01T10`` and ``Clip: A.mp4`` for ``Clip``, so both fail with "Protocol not found".
``ffmpeg_path`` hands local files to FFmpeg as ``file:`` + the absolute path, which opens any name;
real URLs never come through here (``stylize_video.pipeline.live.inputs`` / ``outputs`` route them).

Outputs are written as ``.<name>.<pid>@<host>.inprogress`` next to the final name and renamed when
complete (``<name>`` shortened, with a hash, where the whole would pass the file system's name limit:
``stylize_video.cliargs.fit_name``). A run that is killed (SIGKILL, power loss) leaves its temporary file behind;
``remove_stale_temps`` deletes those of processes on this host that no longer exist, when the next run
writes into the same folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

from stylize_video.outfiles import fit_name

_TEMP = re.compile(r"^\..+\.(\d+)@(.+)\.inprogress$")


def ffmpeg_path(path: str | os.PathLike[str]) -> str:
    """``file:/abs/path`` for ``av.open``: FFmpeg's file protocol, whatever characters the name has."""
    return "file:" + os.path.abspath(os.fspath(path))


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def temp_name(path: Path) -> Path:
    """The hidden name ``path`` is written under until it is complete: ``.out.mp4.<pid>@<host>.inprogress``."""
    return path.with_name(fit_name(path.name, before=".", after=f".{os.getpid()}@{_host()}.inprogress",
                                   folder=path.parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete ``.*.<pid>@<this host>.inprogress`` files in ``folder`` whose process is gone; returns them.

    Files of other hosts (a shared network folder) and of live processes are left alone.
    """
    removed = []
    host = _host()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or m.group(2) != host or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file():
                entry.unlink()
                removed.append(entry)
    return removed
