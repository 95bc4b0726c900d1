"""``--ray ADDRESS``: is a Ray cluster answering there? Asked before ``ray.init``, which does not say.

``ray.init(address=...)`` retries an address where nothing (or no Ray) listens for many minutes, printing its
own connection warnings, before it gives up (Ray 2.60: ``RAY_NUM_REDIS_GET_RETRIES`` = 20 attempts of ~40 s).
Ray's GCS (``HOST:6379``) and its Client server (``ray://HOST:10001``) are gRPC servers, so a quick look at
the address tells the usual mistakes apart in a few seconds: nothing listening (refused, a wrong port, the head
node down), a name that does not resolve, a host that does not answer, and a server that is not gRPC (the
dashboard's port 8265, say). A gRPC server answers the HTTP/2 connection preface with its SETTINGS frame
(RFC 9113, section 3.4); that is all this checks.
"""

from __future__ import annotations

import socket

from stylize_video.errors import StylizeError

TIMEOUT_S = 10.0
# RFC 9113 3.4: the client preface, then a SETTINGS frame (9-byte header: length 0, type 4, flags 0, stream 0)
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4
_HINT = "start it with `ray start --head` there, or check the address"


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``ray://HOST:PORT`` -> (host, port); StylizeError when it is not one."""
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StylizeError(f"--ray {address}: not an address (HOST:PORT, ray://HOST:PORT or auto)")
    return host, int(port)


def check_address(address: str, timeout: float | None = None, shown: str | None = None) -> None:
    """StylizeError (one line, naming ``--ray {shown or address}``) unless a gRPC server answers at ``address``
    within ``timeout`` seconds (None: ``TIMEOUT_S``)."""
    host, port = split_address(address)
    label = shown or address
    timeout = TIMEOUT_S if timeout is None else timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except socket.gaierror as exc:
        raise StylizeError(f"--ray {label}: cannot resolve {host} ({exc.strerror or exc})") from None
    except TimeoutError:
        raise StylizeError(f"--ray {label}: no Ray cluster answered within {timeout:g} s; {_HINT}") from None
    except OSError as exc:
        raise StylizeError(f"--ray {label}: no Ray cluster there ({exc.strerror or exc}); {_HINT}") from None
    if len(head) < 9 or head[3] != _SETTINGS:
        raise StylizeError(f"--ray {label}: the server there is not Ray (no gRPC answer); a Ray head listens on "
                           "HOST:6379 (ray start --head) or, through Ray Client, ray://HOST:10001")
