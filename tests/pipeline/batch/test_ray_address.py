"""stylize-batch --ray HOST:PORT where no Ray cluster answers: one line within seconds.

In a module of its own: ``test_ray.py``'s module-wide Ray instance would be used as it is (a driver already
connected to Ray never looks at the address), so this module runs with Ray not initialised."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from stylize_video.pipeline.batch.cli import main


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
