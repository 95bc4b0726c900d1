"""Which FFmpeg protocols and formats the bundled FFmpeg (PyAV's) was built with.

PyAV exposes ``formats_available`` but no protocol list, and its Linux/Windows wheels carry no libsrt.
We ask libavformat directly (``avio_enum_protocols``) so a missing ``srt://`` gets a clear message
before any connection is tried.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys

import av
from stylize_video.errors import StylizeError


def _libavformat_path() -> str | None:
    """Path of the libavformat that ``av`` has loaded (Linux: /proc/self/maps; else next to the package)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    if "libavformat" in line and "/" in line:
                        return line[line.index("/"):].strip()
        except OSError:
            pass
    pkg = os.path.dirname(av.__file__)
    for pattern in ("../av.libs/*avformat*", ".dylibs/*avformat*", "*avformat*"):
        hits = sorted(glob.glob(os.path.join(pkg, pattern)))
        if hits:
            return hits[0]
    return None


@functools.cache
def ffmpeg_protocols(output: bool) -> frozenset[str] | None:
    """Protocol names for input (``output=False``) or output; None if libavformat cannot be queried."""
    path = _libavformat_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        enum = lib.avio_enum_protocols
    except (OSError, AttributeError):
        return None
    enum.restype = ctypes.c_char_p
    enum.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
    opaque = ctypes.c_void_p(None)
    names: set[str] = set()
    while (name := enum(ctypes.byref(opaque), int(output))) is not None:
        names.add(name.decode())
    return frozenset(names)


def has_protocol(name: str, *, output: bool) -> bool | None:
    """True/False if known, None if the build cannot be queried (then opening will tell)."""
    names = ffmpeg_protocols(output)
    return None if names is None else name in names


# Schemes FFmpeg implements as a (de)muxer over tcp/udp rather than as a protocol.
_FORMAT_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp"}


def require_protocol(name: str, *, output: bool) -> None:
    """Raise ``StylizeError`` if the bundled FFmpeg definitely lacks protocol ``name``."""
    if name in _FORMAT_SCHEMES:
        if not has_format(_FORMAT_SCHEMES[name]):
            raise StylizeError(f"this FFmpeg build has no {name} (de)muxer")
        return
    if has_protocol(name, output=output) is False:
        hint = ""
        if name in ("srt", "rist"):
            hint = (f"; PyAV's wheels are built without lib{name}: install PyAV from source against an FFmpeg with "
                    f"--enable-lib{name}, or relay with the ffmpeg CLI (e.g. send udp:// and let ffmpeg forward to {name}://)")
        raise StylizeError(f"this FFmpeg build has no {name}:// protocol{hint}")


def has_format(name: str) -> bool:
    """Whether a (de)muxer or device named ``name`` exists; PyAV lists aliases as ``"video4linux2,v4l2"``."""
    return any(name in entry.split(",") for entry in av.formats_available)
