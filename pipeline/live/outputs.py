"""Output specs for live mode: network streams, stdout and files; container chosen from the URL scheme.

  ``udp://HOST:PORT``  ``tcp://HOST:PORT[?listen]``  ``srt://HOST:PORT[?mode=…]``  -> MPEG-TS
  ``rtmp://HOST/app/key``                                                      -> FLV
  ``-``                                                                        -> MPEG-TS on stdout (``--format nut``)
  ``out.mp4``                                                                  -> file (temporary name, renamed at the end)
``--format`` overrides the container in every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stylize_video.errors import StylizeError
from stylize_video.pipeline.live.protocols import has_format, require_protocol

CONTAINER_OF_SCHEME: dict[str, str] = {
    "udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rist": "mpegts",
    "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp",
}
STDOUT_FORMATS = ("mpegts", "nut", "matroska", "flv")  # streamable without seeking back
# Muxer options per container: write packets out at once; FLV on a socket cannot seek back for duration.
MUXER_OPTIONS: dict[str, dict[str, str]] = {
    "mpegts": {"flush_packets": "1"},
    "rtp_mpegts": {"flush_packets": "1"},
    "nut": {"flush_packets": "1"},
    "matroska": {"flush_packets": "1", "live": "1"},
    "flv": {"flush_packets": "1", "flvflags": "no_duration_filesize"},
    "rtsp": {"rtsp_transport": "tcp"},
}
UDP_PACKET = "1316"  # 7 x 188-byte TS packets: fits one Ethernet MTU


@dataclass(frozen=True)
class OutputSpec:
    """A parsed output: target for ``av.open(..., "w")``, container, muxer options, and whether it is live."""

    kind: str  # "network" | "stdout" | "file"
    target: str
    format: str | None
    options: dict[str, str] = field(default_factory=dict)
    live: bool = True
    scheme: str | None = None  # URL scheme of network outputs


def _with_query(url: str, key: str, value: str) -> str:
    if f"{key}=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name the file system refuses (too long): the file checks say so, on one line
        return False


def parse_output(spec: str, *, output_format: str | None = None) -> OutputSpec:
    """Parse a user's output spec; ``output_format`` forces the container."""
    if output_format is not None and not has_format(output_format):
        raise StylizeError(f"unknown output format {output_format!r} for this FFmpeg build")
    if spec == "-":
        fmt = output_format or "mpegts"
        if fmt not in STDOUT_FORMATS:
            raise StylizeError(f"--format {fmt} cannot stream to stdout (use one of: {', '.join(STDOUT_FORMATS)})")
        return OutputSpec("stdout", "pipe:1", fmt, dict(MUXER_OPTIONS.get(fmt, {})), live=True)
    if "://" in spec:
        scheme = urlsplit(spec).scheme.lower()
        if scheme not in CONTAINER_OF_SCHEME:
            raise StylizeError(f"unsupported output URL scheme {scheme}:// "
                               f"(supported: {', '.join(sorted(CONTAINER_OF_SCHEME))})")
        if scheme != "tcp":  # tcp is served by Python sockets (pipeline/live/tcp.py)
            require_protocol(scheme, output=True)
        fmt = output_format or CONTAINER_OF_SCHEME[scheme]
        target = _with_query(spec, "pkt_size", UDP_PACKET) if scheme == "udp" else spec
        return OutputSpec("network", target, fmt, dict(MUXER_OPTIONS.get(fmt, {})), live=True, scheme=scheme)
    path = Path(spec)
    if _is_folder(path):  # (not "no extension": that it is a folder is what the user needs to hear)
        raise StylizeError(f"{spec} is a folder; give the output a file name, e.g. {path / 'out.mp4'}")
    if not path.suffix and output_format is None:
        raise StylizeError(f"{spec}: cannot tell the container without an extension; add one or pass --format")
    if not path.parent.is_dir():
        raise StylizeError(f"output folder does not exist: {path.parent}")
    return OutputSpec("file", spec, output_format, {}, live=False)
