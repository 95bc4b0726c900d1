"""stylize-batch with the default (local process) executor: frame-exact outputs, a worker killed mid-segment,
the summary, and resuming. Costs two worker-process starts per run (torch import + model load)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import av
import pytest
from stylize_video.pipeline.batch.cli import main


@pytest.fixture(scope="module")
def local_run(clips, checkpoints, tmp_path_factory, kit):
    """One run over the clip folder with 2 workers, segments kept; the first worker seen writing a segment is
    killed."""
    out = tmp_path_factory.mktemp("batch-local")
    killer = kit.SegmentKiller(out / ".stylize-batch")
    killer.start()
    rc = main(kit.args(clips, out, checkpoints["style"], "--workers", "2", "--json", str(out / "s.json"),
                         "--markdown", str(out / "s.md"), "--quiet", "--keep-segments"))
    killer.stop.set()
    return rc, out, json.loads((out / "s.json").read_text()), killer


def test_outputs_are_frame_exact(local_run, singles, kit):
    rc, out, summary, _ = local_run
    assert rc == 0
    for name in kit.CLIPS:
        kit.exact(out / name, singles[name])
    assert [i["status"] for i in summary["inputs"]] == ["done"] * 3
    assert {i["output"].rsplit("/", 1)[1]: i["segments"] for i in summary["inputs"]} == kit.SEGMENTS


def test_killed_worker_is_retried(local_run, kit):
    rc, _, summary, killer = local_run
    assert rc == 0
    assert killer.killed is not None  # a worker was killed mid-segment ...
    # ... its segment ran again on a new pool, using one attempt; the other worker's segment, lost with the
    # pool, ran again too but used none
    assert summary["restarts"] == 1 and summary["retries"] == 1
    assert summary["segments_run"] == sum(kit.SEGMENTS.values()) and summary["segments_failed"] == 0
    assert killer.killed not in {int(w["worker"].rsplit(":", 1)[1]) for w in summary["workers"]}


def test_summary_has_per_worker_stats(local_run, kit):
    _, out, summary, _ = local_run
    assert summary["executor"] == "local" and summary["workers_requested"] == 2 and summary["exit_code"] == 0
    workers = summary["workers"]
    assert workers and all(w["device"] == "cpu" and w["fps"] > 0 for w in workers)  # those that finished segments
    assert sum(w["frames"] for w in workers) == summary["frames"] == sum(c["frames"] for c in kit.CLIPS.values())
    assert sum(w["segments"] for w in workers) == sum(kit.SEGMENTS.values())
    md = (out / "s.md").read_text()
    assert "| worker | device |" in md and all(w["worker"] in md for w in workers)


def test_resume_does_only_what_is_missing(local_run, clips, checkpoints, singles, capsys, kit):
    _, out, _, _ = local_run
    args = kit.args(clips, out, checkpoints["style"], "--workers", "2", "--json", "-", "--quiet", "--keep-segments")
    stamps = {name: (out / name).stat().st_mtime_ns for name in kit.CLIPS}
    # the same command again: nothing to do, no worker started, nothing rewritten
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert [i["status"] for i in again["inputs"]] == ["reused"] * 3 and again["segments_run"] == 0
    assert again["workers"] == [] and {n: (out / n).stat().st_mtime_ns for n in kit.CLIPS} == stamps
    # a segment file damaged in place (same size): the join finds it, fails that input with one line, deletes
    # the segment and forgets it (no worker started)
    segments = out / ".stylize-batch" / "segments"
    (out / "c.mov").unlink()
    (c0,) = segments.glob("c-*/00000-*.nut")
    with open(c0, "r+b") as f:
        f.write(bytes(64))
    assert main(args) == 3
    captured = capsys.readouterr()
    failed = json.loads(captured.out)
    assert [i["status"] for i in failed["inputs"]] == ["reused", "reused", "failed"] and failed["workers"] == []
    error = failed["inputs"][2]["error"]
    assert error.startswith("joining the segments: segment 0 is unreadable (") and error.endswith(
        "); deleted it: the next run processes it again")
    assert captured.err == f"stylize-batch: error: {clips / 'c.mov'}: {error}\n"
    assert not c0.exists() and not (out / "c.mov").exists()
    assert c0.stem.split("-")[1] not in json.loads((out / ".stylize-batch" / "manifest.json").read_text())["segments"]
    # files damaged between runs (emptied, cut short, a timing sidecar replaced) and outputs lost: the next run
    # processes those segments again (and the one deleted above), reuses the others, and writes exact outputs
    (out / "a.mp4").unlink()
    (out / "b.mkv").unlink()
    (a1,) = segments.glob("a-*/00001-*.nut")
    a1.write_bytes(b"")
    (b0,) = segments.glob("b-*/00000-*.timing.json")
    b0.write_text("{}")
    (c1,) = segments.glob("c-*/00001-*.nut")
    c1.write_bytes(c1.read_bytes()[: c1.stat().st_size // 2])
    assert main(args) == 0
    part = json.loads(capsys.readouterr().out)
    assert [i["status"] for i in part["inputs"]] == ["done"] * 3
    assert part["segments_run"] == 4 and part["segments_reused"] == sum(kit.SEGMENTS.values()) - 4
    redone = "its file from an earlier run is missing, cut short or changed; processed again"
    assert [i["warnings"] for i in part["inputs"]] == [[f"segment 1: {redone}"], [f"segment 0: {redone}"],
                                                        [f"segment 1: {redone}"]]
    for name in kit.CLIPS:
        kit.exact(out / name, singles[name])


def test_changed_settings_are_not_reused(local_run, clips, checkpoints, capsys, kit):
    _, out, _, _ = local_run
    stamp = (out / "a.mp4").stat().st_mtime_ns
    # another encoder setting: the outputs are not this batch's result any more; refused before any work
    rc = main([*kit.args(clips, out, checkpoints["style"], "--crf", "1")])
    err = capsys.readouterr().err
    assert rc == 1 and "exists (and 2 more) and is not this batch's result" in err and "--overwrite" in err
    assert (out / "a.mp4").stat().st_mtime_ns == stamp


def test_join_only_option_reuses_segments(local_run, clips, checkpoints, capsys, kit):
    """--no-audio changes the join, not the segments: only the join runs again (no worker starts)."""
    _, out, _, _ = local_run
    args = kit.args(clips / "b.mkv", out, checkpoints["style"], "--keep-segments", "--json", "-", "--quiet",
                    "--no-audio", "--overwrite")
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["segments_run"] == 0 and summary["segments_reused"] == kit.SEGMENTS["b.mkv"]
    assert summary["inputs"][0]["status"] == "done"
    with av.open(str(out / "b.mkv")) as c:
        assert not c.streams.audio and len(list(c.decode(video=0))) == kit.CLIPS["b.mkv"]["frames"]


@pytest.mark.parametrize("bad", [{"segments": []}, {"frames": None}, {"segments": [[None, 5, None, 3], [6, None, 0, 47]]}])
def test_a_bad_cached_plan_is_probed_again(local_run, clips, checkpoints, singles, capsys, kit, bad):
    """A manifest plan that plan_input never writes (no segment, a count that is not one, segments that do not
    meet): the input is probed again, its finished segments reused; not a failure on every run."""
    _, out, _, _ = local_run
    manifest = out / ".stylize-batch" / "manifest.json"
    data = json.loads(manifest.read_text())
    key = next(k for k, p in data["plans"].items() if p["frames"] == kit.CLIPS["c.mov"]["frames"])
    good = data["plans"][key]
    data["plans"][key] = {**good, **bad}
    manifest.write_text(json.dumps(data))
    (out / "c.mov").unlink()
    assert main(kit.args(clips / "c.mov", out, checkpoints["style"], "--keep-segments", "--json", "-", "-q")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["inputs"][0]["status"] == "done" and summary["inputs"][0]["warnings"] == []
    assert summary["segments_run"] == 0 and summary["segments_reused"] == kit.SEGMENTS["c.mov"]
    assert json.loads(manifest.read_text())["plans"][key] == good
    kit.exact(out / "c.mov", singles["c.mov"])


@pytest.mark.skipif(sys.platform == "win32", reason="process groups, SIGSTOP (POSIX)")
def test_ctrl_c_then_the_same_command_resumes(clips, checkpoints, singles, tmp_path, kit):
    """Ctrl-C as a terminal sends it (SIGINT to the driver's whole process group) once the first of two segments is
    in the manifest (the driver hands out the second only after recording the first, seconds of work), its worker
    frozen first (SIGSTOP: the second cannot finish while the Ctrl-C is on its way): exit 130, 'interrupted' the
    last line on stderr (the driver waited for its pool), the worker killed and reaped by the driver. The same
    command again runs only the segment that was not finished, and the output is frame-exact."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stylize_video.pipeline.batch.cli",
           *kit.args(clips / "c.mov", out, checkpoints["style"], "--workers", "1")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    manifest, deadline, worker = out / ".stylize-batch" / "manifest.json", time.monotonic() + 120, None
    try:
        while worker is None and time.monotonic() < deadline and proc.poll() is None:
            done = json.loads(manifest.read_text())["segments"] if manifest.exists() else {}  # (replaced atomically)
            worker = int(next(iter(done.values()))["worker"].rsplit(":", 1)[1]) if done else None
            time.sleep(0.02)
        assert worker is not None, "no segment finished"
        os.kill(worker, signal.SIGSTOP)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "stylize-batch: interrupted", err
    with pytest.raises(ProcessLookupError):  # killed and reaped by the driver
        os.kill(worker, 0)
    assert not (out / "c.mov").exists()
    again = subprocess.run([*cmd, "--json", "-", "-q"], capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["segments_reused"] == 1 and summary["segments_run"] == kit.SEGMENTS["c.mov"] - 1
    kit.exact(out / "c.mov", singles["c.mov"])


def test_a_model_the_workers_cannot_use_stops_the_batch(clips, checkpoints, tmp_path, capsys, kit):
    """--match-histogram on a style model (found when a worker loads it): one line and exit 1, not one failed
    input per input; nothing written."""
    out = tmp_path / "out"
    rc = main(kit.args(clips, out, checkpoints["style"], "--match-histogram", "--workers", "1"))
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("stylize-batch: error: --match-histogram is for super-resolution models") and \
        err.count("\n") == 1, err
    assert sorted(p.name for p in out.iterdir()) == [".stylize-batch"]
    assert json.loads((out / ".stylize-batch" / "manifest.json").read_text())["segments"] == {}
    assert not (out / ".stylize-batch" / "segments").exists()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a re-parented process that died may wait to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc (Linux)")
def test_workers_end_when_the_driver_is_killed(clips, checkpoints, tmp_path, kit):
    """SIGKILL of the driver mid-segment: its worker (own session, re-parented) ends within seconds instead of
    running on for a batch nobody will join."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stylize_video.pipeline.batch.cli",
           *kit.args(clips / "c.mov", out, checkpoints["style"], "--workers", "1", "-q")]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    worker, deadline = None, time.monotonic() + 120
    while worker is None and time.monotonic() < deadline and proc.poll() is None:
        for tmp in (out / ".stylize-batch").glob("segments/*/.*.inprogress"):  # a worker writing a segment
            worker = int(re.search(r"\.(\d+)@[^/]*\.inprogress$", tmp.name).group(1))
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert worker is not None and worker != proc.pid
    try:
        gone = time.monotonic() + 5
        while _running(worker) and time.monotonic() < gone:
            time.sleep(0.05)
        assert not _running(worker)
    finally:
        if _running(worker):
            os.kill(worker, signal.SIGKILL)


def test_workers_ignore_ctrl_c_even_while_they_start(checkpoints):
    """A terminal's Ctrl-C reaches its whole process group, which a worker leaves (``setsid``) only once started:
    SIGINT sent to a worker the moment the pool starts it neither ends nor interrupts it (it starts with SIGINT
    blocked, then ignores it), and leaving the executor leaves no worker process and no pool thread behind."""
    from stylize_video.pipeline.batch.local import LocalExecutor
    from stylize_video.pipeline.batch.worker import WorkerConfig

    with LocalExecutor(WorkerConfig(str(checkpoints["style"])), ["cpu"]) as executor:
        future = executor.submit(signal.getsignal, signal.SIGINT)  # starts the worker
        (worker,) = executor._processes()
        os.kill(worker.pid, signal.SIGINT)  # while it imports, long before its initializer has run
        manager = executor.pool._executor_manager_thread
        assert future.result(timeout=120) == signal.SIG_IGN
        assert worker.is_alive()
    assert worker.exitcode == -signal.SIGKILL and not manager.is_alive()
