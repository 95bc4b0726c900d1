"""stylize-batch with the default (local process) executor: frame-exact outputs, a worker killed mid-segment,
the summary, and resuming. Costs two worker-process starts per run (torch import + model load)."""

from __future__ import annotations

import json
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
    assert summary["restarts"] == 1 and summary["retries"] >= 1  # ... its segment ran again on a new pool
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
    # an output and one of its segments lost (as after a crash): that segment runs, then the join
    (out / "b.mkv").unlink()
    lost = sorted((out / ".stylize-batch" / "segments").glob("b-*/00001-*.nut"))
    assert len(lost) == 1
    lost[0].unlink()
    assert main(args) == 0
    part = json.loads(capsys.readouterr().out)
    assert [i["status"] for i in part["inputs"]] == ["reused", "done", "reused"]
    assert part["segments_run"] == 1 and part["segments_reused"] == kit.SEGMENTS["b.mkv"] - 1
    kit.exact(out / "b.mkv", singles["b.mkv"])
    assert (out / "a.mp4").stat().st_mtime_ns == stamps["a.mp4"]


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


def test_ctrl_c_then_the_same_command_resumes(clips, checkpoints, singles, tmp_path, kit):
    """Ctrl-C after the first finished segment: exit 130, workers stopped; the same command again runs only the
    segment that was not finished, and the output is frame-exact."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stylize_video.pipeline.batch.cli",
           *kit.args(clips / "c.mov", out, checkpoints["style"], "--workers", "1")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    manifest, deadline = out / ".stylize-batch" / "manifest.json", time.monotonic() + 120
    while time.monotonic() < deadline and not (manifest.exists() and json.loads(manifest.read_text())["segments"]):
        time.sleep(0.02)  # (the manifest is replaced atomically: always whole)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "stylize-batch: interrupted"
    assert not (out / "c.mov").exists()
    again = subprocess.run([*cmd, "--json", "-", "-q"], capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["segments_reused"] >= 1 and summary["segments_run"] == kit.SEGMENTS["c.mov"] - summary["segments_reused"]
    kit.exact(out / "c.mov", singles["c.mov"])
