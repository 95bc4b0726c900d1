"""TCP output through Python sockets instead of FFmpeg's ``tcp://`` protocol.

PyAV opens an output's I/O and writes packets while holding the GIL, so FFmpeg's ``tcp://…?listen`` froze the
whole process (decode thread included) until a receiver connected, and a slow receiver stalled everything.
Python sockets release the GIL while they wait; PyAV writes into them through a file-like object.
"""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

from stylize_video.errors import StylizeError


class SocketWriter:
    """Minimal write-only file object over a connected socket (non-seekable, what PyAV's custom I/O needs)."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)  # releases the GIL while the receiver is slow
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered on our side."""

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # peer already gone
        self.sock.close()


def _host_port(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.port is None:
        raise StylizeError(f"{url}: missing port (tcp://HOST:PORT)")
    query = parse_qs(parts.query, keep_blank_values=True)
    listen = "listen" in query and query["listen"][0] not in ("0",)
    return parts.hostname or ("0.0.0.0" if listen else "127.0.0.1"), parts.port, listen


def open_tcp_writer(url: str, *, timeout: float) -> SocketWriter:
    """``tcp://HOST:PORT`` connects to a receiver; ``tcp://HOST:PORT?listen`` waits ``timeout`` s for one."""
    host, port, listen = _host_port(url)
    try:
        if not listen:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.settimeout(None)
            return SocketWriter(sock, f"{host}:{port}")
        with socket.create_server((host, port), reuse_port=False) as server:
            server.settimeout(timeout)
            sock, addr = server.accept()
    except TimeoutError:
        raise StylizeError(f"{url}: no receiver connected within {timeout:g} s") from None
    except OSError as exc:
        raise StylizeError(f"{url}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # latency over packet count
    return SocketWriter(sock, f"{addr[0]}:{addr[1]}")
