"""Local file names FFmpeg would take for URLs, output names refused before the model loads, temporary files
left by killed runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.io.paths import remove_stale_temps, temp_name
from stylize_video.pipeline.synth import make_test_clip


@pytest.mark.parametrize("name", ["2024-05-01T10:30:00.mp4", "Clip: A.mkv", "v4l2:clip.mp4"])
def test_names_with_a_colon_are_files_as_input_and_output(tmp_path, capsys, negate_onnx, name, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative names, as typed in a shell
    make_test_clip(tmp_path / name, frames=4)
    out = f"out {name}"
    for extra in ([], ["--input-option", "probesize=1000000"]):  # a plain file, and one opened with options
        rc = main([name, out, "--onnx", str(negate_onnx), "--quiet", "--overwrite", *extra])
        err = capsys.readouterr().err
        assert rc == 0, err
        with av.open(str(tmp_path / out)) as c:
            assert len(list(c.decode(video=0))) == 4 and [s.type for s in c.streams] == ["video", "audio"]


def test_an_explicit_file_prefix_is_a_local_path(tmp_path, capsys, negate_onnx, monkeypatch):
    # FFmpeg's own way round a ':' in a name: file:/abs/x.mp4 and file:10:30.mp4 (relative) are local files
    monkeypatch.chdir(tmp_path)
    make_test_clip(tmp_path / "10:30.mp4", frames=4, audio=False)
    for i, spec in enumerate((f"file:{tmp_path / '10:30.mp4'}", "file:10:30.mp4")):
        rc = main([spec, f"out{i}.mkv", "--onnx", str(negate_onnx), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        with av.open(str(tmp_path / f"out{i}.mkv")) as c:
            assert len(list(c.decode(video=0))) == 4
    rc = main(["file:missing.mp4", "out.mkv", "--onnx", str(negate_onnx), "--quiet"])
    assert rc == 1 and capsys.readouterr().err.splitlines() == [
        "stylize-video: error: input not found: missing.mp4 (from file:missing.mp4)"]


def test_an_output_name_the_file_system_refuses_fails_before_the_model_loads(tmp_path, capsys):
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    out = tmp_path / ("x" * 300 + ".mp4")  # longer than any file system takes (NAME_MAX 255)
    broken_model = tmp_path / "model.onnx"
    broken_model.write_bytes(b"not a model")  # had it been loaded, that would be the error
    rc = main([str(src), str(out), "--onnx", str(broken_model)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"stylize-video: error: cannot write {out}")
    assert "too long" in err[0] and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "model.onnx"]


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path, capsys, negate_onnx):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_pid = child.pid  # a process that has exited: its PID is free (reuse within the test is unlikely)
    mine = temp_name(tmp_path / "a.mp4")
    stale = mine.with_name(mine.name.replace(f".{os.getpid()}@", f".{dead_pid}@"))
    live = mine.with_name(mine.name.replace(f".{os.getpid()}@", f".{os.getppid()}@"))  # our parent is alive
    other_host = mine.with_name(mine.name.replace(f".{os.getpid()}@", f".{dead_pid}@").replace(".inprogress",
                                                                                                 "x.inprogress"))
    unrelated = tmp_path / ".notes.inprogress"
    for p in (stale, live, other_host, unrelated):
        p.write_bytes(b"half a video")
    assert remove_stale_temps(tmp_path) == [stale]
    stale.write_bytes(b"half a video")
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    rc = main([str(src), str(tmp_path / "b.mp4"), "--onnx", str(negate_onnx), "--quiet"])  # the next run cleans up
    assert rc == 0, capsys.readouterr().err
    assert not stale.exists() and live.exists() and other_host.exists() and unrelated.exists()


def test_long_output_names_that_fit_are_written(tmp_path, capsys, negate_onnx):
    """245-byte names fit (NAME_MAX 255); their temporary and .partial names are shortened to fit too."""
    from stylize_video.pipeline.io.sink import partial_name

    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    out, js = tmp_path / ("v" * 241 + ".mp4"), tmp_path / ("j" * 240 + ".json")
    assert len(temp_name(out).name.encode()) <= 255 and len(partial_name(out).name.encode()) <= 255
    assert partial_name(tmp_path / "out.mp4").name == "out.partial.mp4"
    rc = main([str(src), str(out), "--onnx", str(negate_onnx), "--json", str(js), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == 2
    assert json.loads(js.read_text())["frames"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", out.name, js.name])


@pytest.mark.parametrize(("json_at", "message"), [
    ("{out}", "two outputs share {out} (output {out} and --json {out})"),
    ("{src}", "--json {src} would overwrite the input {src}"),
    ("{model}", "--json {model} would overwrite the input --onnx {model}"),
])
def test_json_may_not_be_the_video_or_an_input(tmp_path, capsys, json_at, message):
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not a model")  # had it been loaded, that would be the error
    names = {"src": src, "out": tmp_path / "same.mp4", "model": model}
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rc = main([str(src), str(names["out"]), "--onnx", str(model), "--json", json_at.format(**names), "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == ["stylize-video: error: " + message.format(**names)]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, where no file can be created")
def test_a_json_path_that_cannot_be_created_fails_before_the_run(tmp_path, capsys, negate_onnx):
    src = make_test_clip(tmp_path / "in.mp4", frames=2)
    rc = main([str(src), str(tmp_path / "o.mp4"), "--onnx", str(negate_onnx), "--json", "/proc/x.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [("stylize-video: error: --json /proc/x.json: cannot create files in /proc: "
                               "No such file or directory")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_json_failure_after_the_run_keeps_the_video_and_says_so(tmp_path, capsys, negate_onnx, monkeypatch):
    from stylize_video import outfiles

    real = outfiles.os.replace

    def disk_full(src, dst):  # only the JSON: the video's own rename goes through
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(outfiles.os, "replace", disk_full)
    src, out, js = make_test_clip(tmp_path / "in.mp4", frames=2), tmp_path / "o.mp4", tmp_path / "s.json"
    rc = main([str(src), str(out), "--onnx", str(negate_onnx), "--json", str(js), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [(f"stylize-video: error: cannot write {js}: No space left on device; the video is "
                               f"complete: {out}")]
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == 2
