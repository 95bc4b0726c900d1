"""stylize-batch --ray: Ray local with 2 CPUs, 2 actors; an actor killed mid-segment is restarted and its segment
run again; outputs frame-exact. Ray not installed: one line naming the extra to install."""

from __future__ import annotations

import json
import sys

import pytest
from stylize_video.pipeline.batch.cli import main


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance with 2 CPUs (stylize-batch uses an initialised Ray as it is and leaves it running)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'stylize-video[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_frame_exact_with_a_killed_actor(ray_cluster, clips, checkpoints, singles, tmp_path, kit):
    out = tmp_path / "out"
    killer = kit.SegmentKiller(out / ".stylize-batch")
    killer.start()
    rc = main([*kit.args(clips, out, checkpoints["style"], "--ray", "local", "--workers", "2", "--json",
                         str(tmp_path / "s.json"), "--quiet")])
    killer.stop.set()
    assert rc == 0
    for name in kit.CLIPS:
        kit.exact(out / name, singles[name])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["executor"] == "ray" and summary["workers_requested"] == 2
    assert killer.killed is not None and summary["restarts"] == 1 and summary["retries"] == 1
    assert summary["segments_run"] == sum(kit.SEGMENTS.values()) and summary["segments_failed"] == 0
    # (the killed actor may come back after the other one did all the rest: workers that finished segments)
    assert {w["device"] for w in summary["workers"]} == {"cpu"}
    assert sum(w["segments"] for w in summary["workers"]) == summary["segments_run"]
    assert ray_cluster.is_initialized()  # not shut down: it was not ours


def test_ray_model_error_stops_the_batch(ray_cluster, clips, checkpoints, tmp_path, capsys, kit):
    """A model the actors cannot use: one line, exit 1 (the actor's ModelError reaches the driver through Ray)."""
    rc = main(kit.args(clips, tmp_path / "out", checkpoints["style"], "--ray", "local", "--workers", "1", "--match-histogram",
                       "-q"))
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("stylize-batch: error: --match-histogram is for super-resolution models") and \
        err.count("\n") == 1, err


def test_ray_not_installed_is_one_line(monkeypatch, clips, checkpoints, tmp_path, capsys, kit):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc = main(kit.args(clips, tmp_path / "out", checkpoints["style"], "--ray", "local"))
    err = capsys.readouterr().err
    assert rc == 1
    assert err == ("stylize-batch: error: --ray needs Ray, which is not installed: pip install 'stylize-video[ray]' "
                   "(from a checkout: pip install -e '.[ray]')\n")
    assert not (tmp_path / "out").exists()


def test_ray_workers_must_fit_the_cluster(ray_cluster, checkpoints):
    from stylize_video.errors import StylizeError
    from stylize_video.pipeline.batch.ray_executor import RayExecutor
    from stylize_video.pipeline.batch.worker import WorkerConfig

    gpu = RayExecutor(WorkerConfig(str(checkpoints["style"]), device="cuda"))
    assert gpu.device_type() == "cpu"  # what --device auto becomes on this cluster
    with pytest.raises(StylizeError, match="the cluster has no GPU; pass --device cpu"), gpu:
        pass
    with pytest.raises(StylizeError, match="--workers 3: the cluster has 2 CPU"), \
            RayExecutor(WorkerConfig(str(checkpoints["style"])), workers=3):
        pass


def test_ray_gcs_address_passes_the_check(ray_cluster):
    """The check before ray.init asks Ray's GCS itself (GetClusterId): this cluster's GCS passes, within the
    timeout; given as ray:// (Ray Client) it is not a Ray Client server, which the message says."""
    from stylize_video.errors import StylizeError
    from stylize_video.pipeline.batch.ray_address import check_address

    gcs = ray_cluster.get_runtime_context().gcs_address
    check_address(gcs, timeout=5)
    host = gcs.rpartition(":")[0]
    with pytest.raises(StylizeError) as exc:
        check_address(f"ray://{gcs}", timeout=5)
    assert str(exc.value) == (f"--ray ray://{gcs}: the server there is not a Ray Client server (gRPC UNIMPLEMENTED); "
                              f"Ray Client listens on ray://HOST:10001; a Ray head's GCS is given without ray://: "
                              f"{host}:6379")
