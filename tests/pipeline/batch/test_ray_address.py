"""stylize-batch --ray ADDRESS: a value that is not an address is a usage error; where no Ray cluster answers
(nothing, a silent port, a server that is not gRPC, a gRPC/HTTP/2 server that is not Ray's): one line within seconds.

In a module of its own: ``test_ray.py``'s module-wide Ray instance would be used as it is (a driver already
connected to Ray never looks at the address), so this module runs with Ray not initialised."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.cli import main

SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an HTTP/2 SETTINGS frame (RFC 9113 6.5): what a gRPC server sends


@pytest.fixture
def listener():
    """A local TCP port whose server accepts and then answers ``reply`` (None: never answers)."""
    servers = []

    def start(reply: bytes | None) -> int:
        srv = socket.create_server(("127.0.0.1", 0))
        servers.append(srv)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = srv.accept()
                    servers.append(conn)
                    if reply is not None:
                        conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1]

    yield start
    for s in servers:
        s.close()


def test_ray_address_without_ray_is_one_line_within_seconds(clips, checkpoints, tmp_path, capsys, monkeypatch,
                                                            listener, kit):
    """--ray HOST:PORT where no Ray answers: one line within seconds (ray.init itself retries for many minutes)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'stylize-video[ray]')")
    assert not ray.is_initialized(), "another test left Ray running: the address would never be looked at"
    from stylize_video.pipeline.batch import driver, ray_address  # noqa: F401 - imported before the clock starts

    monkeypatch.setattr(ray_address, "TIMEOUT_S", 1.0)
    with socket.create_server(("127.0.0.1", 0)) as s:
        free = s.getsockname()[1]  # (closed again: nothing listens there)
    cases = {free: "no Ray cluster there (Connection refused)",
             listener(None): "no Ray cluster answered within 1 s",
             listener(b"HTTP/1.1 400 Bad Request\r\n\r\n"): "the server there is not Ray (no gRPC answer)"}
    for port, message in cases.items():
        t0 = time.monotonic()
        rc = main(kit.args(clips / "c.mov", tmp_path / "out", checkpoints["style"], "--ray", f"127.0.0.1:{port}"))
        err = capsys.readouterr().err
        assert rc == 1 and time.monotonic() - t0 < 10
        assert err.startswith(f"stylize-batch: error: --ray 127.0.0.1:{port}: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:notaport", "127.0.0.1:99999", "http://127.0.0.1:8265",
                                   "ray://127.0.0.1", "::1:6379", "head node:6379"])
def test_ray_value_that_is_not_an_address_is_a_usage_error(clips, checkpoints, tmp_path, capsys, kit, value):
    """--ray takes one value, checked at parsing: never taken as an input (and a local Ray started for it)."""
    for args in (kit.args(clips / "c.mov", tmp_path / "out", checkpoints["style"], "--ray", value),
                 ["--ray", value, *kit.args(clips / "c.mov", tmp_path / "out", checkpoints["style"])]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"stylize-batch: error: argument --ray: not an address: {value!r} (expected HOST:PORT, ray://HOST:PORT, "
            "auto or local)")
    with pytest.raises(SystemExit) as exc:  # no value: usage error too (`--ray local` starts a local Ray)
        main(kit.args(clips / "c.mov", tmp_path / "out", checkpoints["style"], "--ray"))
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "stylize-batch: error: argument --ray: expected one argument"
    assert not (tmp_path / "out").exists()


@pytest.fixture
def grpc_server():
    """A gRPC server on a free local port, started with ``add(server)`` (its services); stopped after the test."""
    grpc = pytest.importorskip("grpc", reason="grpcio is not installed (pip install 'stylize-video[ray]')")
    from concurrent.futures import ThreadPoolExecutor

    servers = []

    def start(add=None) -> int:
        server = grpc.server(ThreadPoolExecutor(2))
        servers.append(server)
        if add is not None:
            add(server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return port

    yield start
    for s in servers:
        s.stop(0)


def test_http2_server_that_is_not_ray_is_one_line_within_seconds(clips, checkpoints, tmp_path, capsys, monkeypatch,
                                                                 listener, grpc_server, kit):
    """A server that speaks HTTP/2 (gRPC) but is not Ray's: ray.init would retry it for many minutes. Here: a silent
    one (SETTINGS, then nothing), a gRPC server without Ray's services, and Ray Client's server at a GCS address
    (``--ray head:10001``, ray:// forgotten: the hint names it)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'stylize-video[ray]')")
    assert not ray.is_initialized(), "another test left Ray running: the address would never be looked at"
    from ray.util.client.server.server import serve
    from stylize_video.pipeline.batch import driver, ray_address  # noqa: F401 - imported before the clock starts

    monkeypatch.setattr(ray_address, "TIMEOUT_S", 1.0)
    silent, plain = listener(SETTINGS), grpc_server()
    with socket.create_server(("127.0.0.1", 0)) as s:
        client_port = s.getsockname()[1]
    client = serve("127.0.0.1", client_port)  # Ray's own Ray Client server (it starts no Ray until a client connects)
    try:
        monkeypatch.setattr(ray_address, "CLIENT_PORT", client_port)  # (10001 may be taken on this machine)
        cases = {
            f"127.0.0.1:{silent}": "no Ray GCS answered within 1 s (an HTTP/2 server is there, but it does not answer "
            f"Ray's call); a Ray head listens on HOST:6379 (ray start --head) or, through Ray Client, "
            f"ray://HOST:{client_port}",
            f"ray://127.0.0.1:{silent}": "no Ray Client server answered within 1 s",
            f"127.0.0.1:{plain}": "the server there is not a Ray GCS (gRPC UNIMPLEMENTED",
            f"127.0.0.1:{client_port}": "the server there is not a Ray GCS (gRPC UNIMPLEMENTED: Method not found!); "
            f"port {client_port} is Ray Client's: --ray ray://127.0.0.1:{client_port}",
        }
        for address, message in cases.items():
            t0 = time.monotonic()
            rc = main(kit.args(clips / "c.mov", tmp_path / "out", checkpoints["style"], "--ray", address))
            err = capsys.readouterr().err
            assert rc == 1 and time.monotonic() - t0 < 10, (address, err)
            assert err.startswith(f"stylize-batch: error: --ray {address}: {message}") and err.count("\n") == 1, err
        ray_address.check_address(f"ray://127.0.0.1:{client_port}")  # what Ray Client answers passes
    finally:
        client.stop(0)
    assert not ray.is_initialized() and not (tmp_path / "out").exists()
    with pytest.raises(StylizeError, match=r"not a Ray Client server \(gRPC UNIMPLEMENTED"):
        ray_address.check_address(f"ray://127.0.0.1:{plain}")
