"""Input specs: files, webcams, network URLs and stdin, and how to open each with low latency.

Spec grammar (what ``stylize-video INPUT`` accepts):
  ``clip.mp4``                       a file (not live; ``--pace`` makes it behave like a camera); any local
                                     name is a file, ':' or not; ``file:NAME`` (FFmpeg's spelling) too
  ``-``                              stdin (``pipe:0``); not live by default, ``--realtime`` makes it so
  ``v4l2:/dev/video0[?opts]``        Linux webcam (FFmpeg ``video4linux2``)
  ``avfoundation:0[?opts]``          macOS camera index or name
  ``dshow:video=NAME[?opts]``        Windows DirectShow device
  ``udp://… tcp://… srt://… rtmp://… rtsp://… http(s)://…``   network streams (live)
``opts`` is a query string of FFmpeg device options, e.g. ``?video_size=1280x720&framerate=30&input_format=mjpeg``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import av
from stylize_video.errors import StylizeError
from stylize_video.pipeline.io.paths import ffmpeg_path
from stylize_video.pipeline.live.protocols import has_format, require_protocol

# Prefix -> FFmpeg device (demuxer) name.
DEVICE_PREFIXES: dict[str, str] = {
    "v4l2": "video4linux2",
    "video4linux2": "video4linux2",
    "avfoundation": "avfoundation",
    "dshow": "dshow",
}
# Defaults per device; user options override. avfoundation rejects the 29.97 default on many cameras.
DEVICE_DEFAULTS: dict[str, dict[str, str]] = {"avfoundation": {"framerate": "30"}}

# Demuxer settings that trade probing for latency on every live input. Not ``fflags=nobuffer``: it discards
# the packets read while probing, so the first GOP is lost; the keep-newest hand-off drains that backlog anyway.
LIVE_DEMUX_OPTIONS: dict[str, str] = {
    "flags": "low_delay",  # decoder: output frames as soon as possible
    "analyzeduration": "1000000",  # 1 s instead of 5 s
    "probesize": "1000000",
}
# Per-protocol open options (FFmpeg protocol/demuxer AVOptions).
NETWORK_OPTIONS: dict[str, dict[str, str]] = {
    "udp": {"overrun_nonfatal": "1", "buffer_size": "4194304"},  # don't die on a burst; 4 MiB socket buffer
    "rtp": {"buffer_size": "4194304"},
    "rtsp": {"rtsp_transport": "tcp"},  # no UDP loss/reordering through NAT
    "rtmp": {"rtmp_live": "live"},
    "rtmps": {"rtmp_live": "live"},
}
LIVE_SCHEMES = frozenset({"udp", "tcp", "srt", "rist", "rtp", "rtmp", "rtmps", "rtsp", "rtsps"})
URL_SCHEMES = LIVE_SCHEMES | {"http", "https"}
# A URL that waits for the sender to connect needs a longer open timeout.
_LISTEN_KEYS = ("listen", "mode=listener")


@dataclass(frozen=True)
class InputSpec:
    """A parsed input: what to pass to ``av.open`` and whether it is live."""

    kind: str  # "file" | "device" | "network" | "stdin"
    target: str  # av.open's file argument
    format: str | None = None  # forced demuxer/device, None = probe
    options: dict[str, str] = field(default_factory=dict)
    live: bool = False
    scheme: str | None = None  # URL scheme for network inputs

    @property
    def listens(self) -> bool:
        """True for URLs where we are the server (``tcp://…?listen``, ``srt://…?mode=listener``)."""
        return self.kind == "network" and any(k in self.target for k in _LISTEN_KEYS)


def _split_query(rest: str) -> tuple[str, dict[str, str]]:
    target, _, query = rest.partition("?")
    return target, dict(parse_qsl(query, keep_blank_values=True))


def parse_input(spec: str, *, input_format: str | None = None,
                options: dict[str, str] | None = None) -> InputSpec:
    """Parse a user's input spec. ``input_format`` forces the demuxer; ``options`` override defaults."""
    user = dict(options or {})
    if spec == "-":
        return InputSpec("stdin", "pipe:0", input_format, user, live=False)
    if _is_file(spec):  # an existing local file is a file, whatever its name looks like ("v4l2:x.mp4")
        return InputSpec("file", spec, input_format, user, live=False)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix.lower() == "file":  # FFmpeg's way round ':' in a name: file:/abs/x.mp4, file:10:30.mp4
        if not _is_file(rest):
            raise StylizeError(f"input not found: {rest} (from {spec})")
        return InputSpec("file", rest, input_format, user, live=False)
    if sep and prefix.lower() in DEVICE_PREFIXES and not rest.startswith("//"):
        device = DEVICE_PREFIXES[prefix.lower()]
        if not has_format(device):
            raise StylizeError(f"this FFmpeg build has no {device} device (is this the right OS for {prefix}:?)")
        target, query = _split_query(rest)
        if not target:
            raise StylizeError(f"{spec!r}: missing device after {prefix}: (e.g. v4l2:/dev/video0, avfoundation:0)")
        opts = {**DEVICE_DEFAULTS.get(device, {}), **query, **user}
        return InputSpec("device", target, input_format or device, opts, live=True)
    scheme = urlsplit(spec).scheme.lower() if "://" in spec else ""
    if scheme:
        if scheme not in URL_SCHEMES:
            raise StylizeError(f"unsupported input URL scheme {scheme}:// (supported: {', '.join(sorted(URL_SCHEMES))})")
        require_protocol(scheme, output=False)
        opts = {**LIVE_DEMUX_OPTIONS, **NETWORK_OPTIONS.get(scheme, {}), **user} if scheme in LIVE_SCHEMES else user
        fmt = input_format or ("mpegts" if scheme in ("srt", "rist", "udp") else None)
        return InputSpec("network", spec, fmt, opts, live=scheme in LIVE_SCHEMES, scheme=scheme)
    if not _is_file(spec):
        raise StylizeError(f"input not found: {spec}")
    return InputSpec("file", spec, input_format, user, live=False)


def _is_file(spec: str) -> bool:
    try:
        return Path(spec).is_file()
    except OSError:  # a name the file system refuses (too long): no such file
        return False


def open_input(spec: InputSpec, *, open_timeout: float = 30.0, read_timeout: float = 10.0) -> av.container.InputContainer:
    """``av.open`` the input; FFmpeg errors become one-line ``StylizeError``s.

    Listening URLs wait up to ``open_timeout`` for the sender; reads time out after ``read_timeout``.
    """
    timeout = (open_timeout, read_timeout) if spec.kind in ("network", "device") else None
    try:
        # a local file goes through FFmpeg's file protocol: "10:30.mp4" is not protocol "10"
        target = ffmpeg_path(spec.target) if spec.kind == "file" else spec.target
        container = av.open(target, "r", format=spec.format, options=spec.options or None, timeout=timeout,
                            metadata_errors="replace")
    except av.error.ExitError as exc:  # timeouts surface as "Immediate exit requested"
        raise StylizeError(f"{_display(spec)}: no data within {open_timeout:g} s ({exc.strerror})") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise StylizeError(f"cannot open {_display(spec)}: {getattr(exc, 'strerror', None) or exc}") from None
    if not container.streams.video:
        container.close()
        raise StylizeError(f"{_display(spec)} has no video stream")
    return container


def _display(spec: InputSpec) -> str:
    return "stdin" if spec.kind == "stdin" else spec.target
