"""What an interrupted ``stylize-video`` keeps: ``out.partial.mp4`` never replaces an existing file without
--overwrite (``out.partial-2.mp4``, ... instead), and the --json summary goes beside it (``s.partial.json``), so
the same command runs again without being refused."""

from __future__ import annotations

import json
import os
import signal
import time

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.source import FileSource
from stylize_video.pipeline.synth import make_test_clip


class _CtrlCAfter(FileSource):
    """Ctrl-C (SIGINT to this process) after 3 frames; waits for it to stop the source, as a real one would
    within a frame or two."""

    def __iter__(self):
        for i, item in enumerate(super().__iter__()):
            if i == 3:
                os.kill(os.getpid(), signal.SIGINT)
                deadline = time.monotonic() + 10
                while not self._stop and time.monotonic() < deadline:
                    time.sleep(0.01)
            yield item


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture
def run(tmp_path, negate_onnx, monkeypatch, capsys):
    """``run(*extra, ctrl_c=True)``: stylize-video in.mp4 out.mp4 --json s.json [extra], Ctrl-C after 3 frames;
    returns (exit status, last stderr line)."""
    from stylize_video.pipeline.live import plan

    src = make_test_clip(tmp_path / "in.mp4", frames=40, audio=False)

    def run(*extra: str, ctrl_c: bool = True) -> tuple[int, str]:
        monkeypatch.setattr(plan, "FileSource", _CtrlCAfter if ctrl_c else FileSource)
        rc = main([str(src), str(tmp_path / "out.mp4"), "--onnx", str(negate_onnx), "--preset", "ultrafast",
                   "--json", str(tmp_path / "s.json"), *extra])
        return rc, capsys.readouterr().err.strip().splitlines()[-1]

    return run


def test_interrupted_runs_keep_every_file_and_the_command_runs_again(tmp_path, run):
    mine = tmp_path / "out.partial.mp4"
    mine.write_bytes(b"the user's own file")
    rc, last = run()
    kept, summary = tmp_path / "out.partial-2.mp4", tmp_path / "s.partial.json"
    assert rc == 130 and last == f"stylize-video: interrupted; partial output kept: {kept} (summary: {summary})"
    assert mine.read_bytes() == b"the user's own file"  # before: replaced without a word
    stats = json.loads(summary.read_text())
    assert stats["interrupted"] and stats["output"] == str(kept) and 0 < stats["frames"] == _frames(kept) < 40
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "out.mp4").exists()

    rc, last = run()  # the same command again: not refused (s.json is free), nothing replaced
    assert rc == 130 and last.endswith(f"{tmp_path / 'out.partial-3.mp4'} (summary: {tmp_path / 's.partial-2.json'})")
    assert json.loads(summary.read_text()) == stats

    assert run(ctrl_c=False)[0] == 0  # and once more, to the end: the final names
    assert _frames(tmp_path / "out.mp4") == 40 and json.loads((tmp_path / "s.json").read_text())["frames"] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.mp4", "out.mp4", "out.partial-2.mp4", "out.partial-3.mp4", "out.partial.mp4", "s.json",
        "s.partial-2.json", "s.partial.json"]


def test_with_overwrite_the_partial_names_are_reused(tmp_path, run):
    (tmp_path / "out.partial.mp4").write_bytes(b"old")
    (tmp_path / "s.partial.json").write_bytes(b"old")
    rc, last = run("--overwrite")
    assert rc == 130 and last.endswith(f"{tmp_path / 'out.partial.mp4'} (summary: {tmp_path / 's.partial.json'})")
    assert json.loads((tmp_path / "s.partial.json").read_text())["output"] == str(tmp_path / "out.partial.mp4")
    assert 0 < _frames(tmp_path / "out.partial.mp4") < 40
