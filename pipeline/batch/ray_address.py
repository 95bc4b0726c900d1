"""``--ray ADDRESS``: what the value may be, and is a Ray cluster answering there? Asked before ``ray.init``.

``ray.init(address=...)`` retries an address where no Ray GCS answers for many minutes, printing its own
connection warnings, before it gives up (Ray 2.60: ``RAY_NUM_REDIS_GET_RETRIES`` = 20 attempts of ~40 s),
and it does so too where a gRPC or HTTP/2 server that is not Ray answers (``--ray head:10001``, Ray Client's
port without ``ray://``; a proxy answering HTTP/2 404). So the address is asked, within ``TIMEOUT_S`` in all:

1. a TCP connection and the HTTP/2 connection preface, which a gRPC server answers with its SETTINGS frame
   (RFC 9113, section 3.4): tells nothing listening, a name that does not resolve, a host that does not answer
   and a server that is not gRPC (the dashboard's port 8265) apart, in one line each;
2. one gRPC call that only Ray answers, with Ray's own generated stubs (``ray.core.generated``; grpcio comes
   with ``ray[client]``, which the ``ray`` extra installs): ``ray.rpc.NodeInfoGcsService/GetClusterId`` for
   ``HOST:PORT`` (a GCS: the first call Ray's GCS client makes, src/ray/protobuf/gcs_service.proto) and
   ``ray.rpc.RayletDriver/ClusterInfo`` of type ``PING`` for ``ray://HOST:PORT`` (what Ray Client asks on
   connecting, src/ray/protobuf/ray_client.proto). Another gRPC server answers UNIMPLEMENTED: not Ray.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import time

from stylize_video.errors import StylizeError

TIMEOUT_S = 10.0
LOCAL, AUTO = "local", "auto"  # start a local Ray instance; join the cluster of this machine
CLIENT_PREFIX = "ray://"
CLIENT_PORT = 10001  # Ray Client's default port (ray start --ray-client-server-port)
INSTALL_HINT = "pip install 'stylize-video[ray]' (from a checkout: pip install -e '.[ray]')"
FORMS = f"HOST:PORT, {CLIENT_PREFIX}HOST:PORT, {AUTO} or {LOCAL}"
# RFC 9113 3.4: the client preface, then a SETTINGS frame (9-byte header: length 0, type 4, flags 0, stream 0)
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4
# a host name or IPv4 address, or an IPv6 address in brackets (RFC 3986 3.2.2), then a port
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.\-]+)):(?P<port>\d{1,5})")
_START_HINT = "start it with `ray start --head` there, or check the address"


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``ray://HOST:PORT`` -> (host, port); StylizeError when it is not one."""
    m = _HOST_PORT.fullmatch(address.removeprefix(CLIENT_PREFIX))
    if m is None or not 0 < int(m["port"]) < 65536:
        raise StylizeError(f"--ray {address}: not an address ({FORMS})")
    return m["v6"] or m["host"], int(m["port"])


def address_arg(text: str) -> str:
    """argparse ``type=`` for ``--ray``: ``local``, ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` (a usage error,
    exit 2, otherwise: ``--ray 127.0.0.1 in/`` is never taken as a local run of an input named 127.0.0.1)."""
    if text in (LOCAL, AUTO):
        return text
    try:
        split_address(text)
    except StylizeError:
        raise argparse.ArgumentTypeError(f"not an address: {text!r} (expected {FORMS})") from None
    return text


def check_address(address: str, timeout: float | None = None, shown: str | None = None) -> None:
    """StylizeError (one line, naming ``--ray {shown or address}``) unless Ray's GCS (``HOST:PORT``) or Ray
    Client server (``ray://HOST:PORT``) answers at ``address`` within ``timeout`` seconds (None: ``TIMEOUT_S``)."""
    host, port = split_address(address)
    label = f"--ray {shown or address}"
    timeout = TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    client = address.startswith(CLIENT_PREFIX)
    _check_http2(host, port, client, label, timeout, deadline)
    _ask_ray(host, port, client, label, timeout, deadline)


def _not_ray(host: str, port: int, client: bool) -> str:
    """Where Ray usually listens, as a hint after "not Ray"."""
    if client:
        return (f"Ray Client listens on {CLIENT_PREFIX}HOST:{CLIENT_PORT}; a Ray head's GCS is given without "
                f"{CLIENT_PREFIX}: {host}:6379")
    if port == CLIENT_PORT:
        return f"port {CLIENT_PORT} is Ray Client's: --ray {CLIENT_PREFIX}{host}:{port}"
    return (f"a Ray head listens on HOST:6379 (ray start --head) or, through Ray Client, "
            f"{CLIENT_PREFIX}HOST:{CLIENT_PORT}")


def _check_http2(host: str, port: int, client: bool, label: str, timeout: float, deadline: float) -> None:
    """Step 1: a TCP connection and a SETTINGS frame in answer to the HTTP/2 preface."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            s.sendall(_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except socket.gaierror as exc:
        raise StylizeError(f"{label}: cannot resolve {host} ({exc.strerror or exc})") from None
    except TimeoutError:
        raise StylizeError(f"{label}: no Ray cluster answered within {timeout:g} s; {_START_HINT}") from None
    except OSError as exc:
        raise StylizeError(f"{label}: no Ray cluster there ({exc.strerror or exc}); {_START_HINT}") from None
    if len(head) < 9 or head[3] != _SETTINGS:
        raise StylizeError(f"{label}: the server there is not Ray (no gRPC answer); {_not_ray(host, port, client)}")


def _ask_ray(host: str, port: int, client: bool, label: str, timeout: float, deadline: float) -> None:
    """Step 2: the gRPC call only Ray's GCS (or, ``client``, Ray Client server) answers."""
    try:
        import grpc
    except ImportError:
        raise StylizeError(f"{label}: needs Ray's client extra (grpcio), which is not installed: {INSTALL_HINT}") \
            from None
    # as Ray's own channels: no HTTP proxy unless RAY_grpc_enable_http_proxy (ray/_private/ray_constants.py)
    proxy = int(os.environ.get("RAY_grpc_enable_http_proxy", "0").lower() in ("1", "true"))
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", proxy)]) as channel:
        if client:
            from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

            service, call = "Ray Client server", ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo
            request = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
        else:
            from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

            service, call = "Ray GCS", gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId
            request = gcs_service_pb2.GetClusterIdRequest()
        try:
            call(request, timeout=max(deadline - time.monotonic(), 0.001), metadata=_auth_metadata())
            return
        except grpc.RpcError as exc:
            code, details = exc.code(), " ".join(str(exc.details() or "").split())  # (one line)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise StylizeError(f"{label}: no {service} answered within {timeout:g} s (an HTTP/2 server is there, but it "
                           f"does not answer Ray's call); {_not_ray(host, port, client)}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        raise StylizeError(f"{label}: the {service} there refused the call ({details}): give this machine the "
                           "cluster's token as for `ray` commands (Ray token authentication)")
    if code == grpc.StatusCode.UNAVAILABLE:
        raise StylizeError(f"{label}: no {service} there ({details}); {_START_HINT}")
    said = f"gRPC {code.name}: {details}" if details else f"gRPC {code.name}"
    raise StylizeError(f"{label}: the server there is not a {service} ({said}); {_not_ray(host, port, client)}")


def _auth_metadata() -> tuple:
    """Ray's token (``Authorization: Bearer ...``) where this machine has one, as Ray's own gRPC clients send it;
    () otherwise, or where the (private) helper has moved."""
    try:
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )

        return tuple(_get_authentication_metadata_tuple())
    except Exception:  # noqa: BLE001 - Ray without token authentication, or it moved: no token sent
        return ()
