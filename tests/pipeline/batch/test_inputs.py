"""stylize-batch inputs and outputs: files, folders, globs, output names and containers, and bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.batch.cli import main
from stylize_video.pipeline.batch.inputs import expand_inputs, output_extension, own_outputs, parse_ext, plan_outputs
from stylize_video.pipeline.synth import make_test_clip


def test_expand_files_folders_globs(clips, tmp_path):
    folder, empty = tmp_path / "in", tmp_path / "empty"
    (folder / "sub").mkdir(parents=True)
    empty.mkdir()
    for name in ("b.mkv", "a.mp4"):
        shutil.copy(clips / name, folder / name)
    shutil.copy(clips / "c.mov", folder / "sub" / "c.mov")
    (folder / "notes.txt").write_text("x")
    files, bad = expand_inputs([str(folder), str(folder / "a.mp4"), str(folder / "**" / "*.mov"),
                                str(empty / "*.mp4"), str(tmp_path / "missing.mp4"), str(empty)])
    # each file once, in argument order; a folder gives its own video files (not notes.txt, not sub/); ** recurses;
    # a missing file named explicitly is reported with the arguments that gave no file
    assert [(f.path, f.listed) for f in files] == [(folder / "a.mp4", True), (folder / "b.mkv", True),
                                                   (folder / "sub" / "c.mov", True)]
    assert [b.error for b in bad] == [f"no video file matches {empty / '*.mp4'}",
                                      f"input not found: {tmp_path / 'missing.mp4'}",
                                      f"no video files in folder {empty}"]
    # the work folders are left out of folders and globs
    files, _ = expand_inputs([str(folder / "**" / "*.*")], exclude=(folder / "sub",))
    assert [f.path for f in files] == [folder / "a.mp4", folder / "b.mkv"]


@pytest.mark.parametrize(("name", "codec", "ext", "want"), [
    ("a.mp4", "libx264", None, ".mp4"),
    ("a.MOV", "libx265", None, ".mov"),
    ("a.mov", "ffv1", None, ".mkv"),  # MOV cannot hold FFV1
    ("a.webm", "libx264", None, ".mkv"),  # WebM holds VP8/VP9/AV1 only
    ("a.webm", "libvpx-vp9", None, ".webm"),
    ("a.avi", "libx264", None, ".mkv"),  # not a container we write
    ("a.mp4", "libx264", ".mkv", ".mkv"),
])
def test_output_container(tmp_path, name, codec, ext, want):
    assert output_extension(tmp_path / name, codec, ext) == want


def test_ext_values():
    assert parse_ext("mkv") == parse_ext(".MKV") == ".mkv"
    with pytest.raises(StylizeError, match="--ext avi: not a container we write"):
        parse_ext("avi")


def test_two_inputs_one_output_name_refused_before_work(clips, checkpoints, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    shutil.copy(clips / "a.mp4", tmp_path / "x" / "a.mp4")
    out = tmp_path / "out"
    rc = main([str(clips / "a.mp4"), str(tmp_path / "x" / "a.mp4"), "--out-dir", str(out),
               "--checkpoint", str(checkpoints["style"])])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("stylize-batch: error: ") and err.count("\n") == 1
    assert f"{clips / 'a.mp4'} and {tmp_path / 'x' / 'a.mp4'} would both be written to {out / 'a.mp4'}" in err
    assert not out.exists()
    files, _ = expand_inputs([str(clips / "a.mp4"), str(tmp_path / "x" / "a.mp4")])
    with pytest.raises(StylizeError, match="would both be written"):  # different containers, same name
        plan_outputs(files, out, "libx264", None)


def test_output_over_an_input_refused(clips, tmp_path):
    files, _ = expand_inputs([str(clips / "a.mp4")])
    with pytest.raises(StylizeError, match="would overwrite an input"):
        plan_outputs(files, clips, "libx264", None)


def test_out_dir_that_is_the_input_folder(checkpoints, tmp_path, capsys):
    """The input folder as --out-dir: refused like a single file when an output would replace an input (one line,
    exit 1, nothing created); with --ext giving other names its videos are processed, and a re-run does not take
    the outputs (nor the work folder) as inputs: they are complete."""
    folder = tmp_path / "in"
    make_test_clip(folder / "a.mp4", frames=12, gop=6)
    make_test_clip(folder / "b.mkv", frames=12, gop=6)
    args = [str(folder), "--out-dir", str(folder), "--checkpoint", str(checkpoints["style"])]
    assert main(args) == 1
    assert capsys.readouterr().err == (f"stylize-batch: error: output {folder / 'a.mp4'} would overwrite an input; "
                                       "choose another --out-dir or --ext\n")
    assert main([*args, "--ext", "mkv"]) == 1  # b.mkv -> b.mkv
    assert f"output {folder / 'b.mkv'} would overwrite an input" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["a.mp4", "b.mkv"]
    (folder / "b.mkv").rename(folder / "b.mov")
    assert main([*args, "--ext", "mkv", "--json", "-", "-q"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [(i["status"], i["frames"]) for i in first["inputs"]] == [("done", 12), ("done", 12)]
    assert sorted(p.name for p in folder.iterdir()) == [".stylize-batch", "a.mkv", "a.mp4", "b.mkv", "b.mov"]
    assert main([*args, "--ext", "mkv", "--json", "-", "-q"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [(i["input"], i["status"]) for i in again["inputs"]] == [(str(folder / "a.mp4"), "reused"),
                                                                   (str(folder / "b.mov"), "reused")]


def test_own_outputs_are_not_inputs(tmp_path):
    """Files a folder or glob gives that are the output of another input, or an output an earlier run recorded, are
    left out; a folder or glob left with none is reported; a file named explicitly is kept."""
    for name in ("a.mp4", "a.mkv", "b.mkv", "old.mkv"):
        (tmp_path / name).write_bytes(b"")
    files, _ = expand_inputs([str(tmp_path)])
    kept, bad = own_outputs(files, tmp_path, None, ".mkv", frozenset({(tmp_path / "old.mkv").resolve()}))
    assert [f.path.name for f in kept] == ["a.mp4", "b.mkv"] and bad == []  # (b.mkv -> b.mkv: plan_outputs refuses)
    files, _ = expand_inputs([str(tmp_path / "a.m*"), str(tmp_path / "old.mkv")])
    kept, bad = own_outputs(files, tmp_path, None, ".mkv", frozenset({(tmp_path / "old.mkv").resolve()}))
    assert [f.path.name for f in kept] == ["a.mp4", "old.mkv"] and bad == []
    files, _ = expand_inputs([str(tmp_path / "old.*")])
    kept, bad = own_outputs(files, tmp_path, None, ".mkv", frozenset({(tmp_path / "old.mkv").resolve()}))
    assert kept == [] and [b.error for b in bad] == [
        f"no video file matches {tmp_path / 'old.*'} other than this batch's outputs"]


@pytest.mark.parametrize("case", ["missing", "not a video", "empty folder and missing"])
def test_no_usable_input_is_one_line(clips, checkpoints, tmp_path, capsys, case):
    """No input that can be used (missing, not a readable video, a folder without videos): an error of the whole
    batch, one line and exit 1 before any work, nothing created (exit 3 is for a batch that wrote some inputs)."""
    gone, broken, empty = tmp_path / "gone.mp4", tmp_path / "broken.mp4", tmp_path / "empty"
    broken.write_text("not a video")
    empty.mkdir()
    inputs, message = {
        "missing": ([gone], f"input not found: {gone}"),
        "not a video": ([broken], f"{broken} is not a readable video (Invalid data found when processing input)"),
        "empty folder and missing": ([empty, gone], (f"none of the 2 inputs can be used: no video files in folder "
                                                     f"{empty}; input not found: {gone}")),
    }[case]
    out = tmp_path / "o"
    assert main([*map(str, inputs), "--out-dir", str(out), "--checkpoint", str(checkpoints["style"])]) == 1
    assert capsys.readouterr().err == f"stylize-batch: error: {message}\n"
    assert not out.exists()


def test_refused_run_leaves_no_work_folder(clips, checkpoints, tmp_path, capsys):
    """An output that exists and is not this batch's: refused before any work, and the run leaves nothing behind
    (no OUT_DIR/.stylize-batch)."""
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(clips / "c.mov", out / "c.mov")
    assert main([str(clips / "c.mov"), "--out-dir", str(out), "--checkpoint", str(checkpoints["style"])]) == 1
    assert capsys.readouterr().err == (f"stylize-batch: error: {out / 'c.mov'} exists and is not this batch's result "
                                       "with these settings; pass --overwrite to replace\n")
    assert [p.name for p in out.iterdir()] == ["c.mov"]


def test_bad_inputs_do_not_stop_the_batch(clips, checkpoints, singles, tmp_path, capsys, kit):
    """A missing and an unreadable input are reported (exit 3); the good one is written, frame-exact."""
    (tmp_path / "broken.mp4").write_text("not a video")
    out = tmp_path / "out"
    rc = main([str(tmp_path / "gone.mp4"), str(tmp_path / "broken.mp4"), str(clips / "c.mov"), "--out-dir", str(out),
               "--checkpoint", str(checkpoints["style"]), "--segment-seconds", "1", "--crf", "0", "--json", "-",
               "--quiet"])
    captured = capsys.readouterr()
    assert rc == 3
    summary = json.loads(captured.out)
    assert summary["exit_code"] == 3
    assert [(i["status"], i["error"]) for i in summary["inputs"]] == [
        ("failed", f"input not found: {tmp_path / 'gone.mp4'}"),
        ("failed", f"{tmp_path / 'broken.mp4'} is not a readable video (Invalid data found when processing input)"),
        ("done", None)]
    assert captured.err.splitlines() == [
        f"stylize-batch: error: input not found: {tmp_path / 'gone.mp4'}",
        (f"stylize-batch: error: {tmp_path / 'broken.mp4'} is not a readable video (Invalid data found when processing "
        "input)")]
    kit.exact(out / "c.mov", singles["c.mov"])
    assert sorted(p.name for p in out.iterdir()) == [".stylize-batch", "c.mov"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--crf", "52"], "--crf 52 is out of range for libx264: 0 to 51 (lower is better quality)"),
    (["--ext", "avi"], "--ext avi: not a container we write"),
    (["--codec", "nope264"], "encoder 'nope264' is not available"),
    (["--json", "/nonexistent-dir/s.json"], "--json /nonexistent-dir/s.json: folder does not exist: /nonexistent-dir"),
    (["--ray", "auto", "--device", "cuda:1"], "--device cuda:N picks one GPU"),
    (["--start", "1"], "--start selects part of one video; stylize-batch processes whole files"),
    (["--ext", "webm", "--codec", "libx264"], "webm cannot hold h264 (from --codec libx264)"),
])
def test_bad_options_are_one_line(clips, checkpoints, tmp_path, capsys, extra, message):
    rc = main([str(clips / "a.mp4"), "--out-dir", str(tmp_path / "o"), "--checkpoint", str(checkpoints["style"]),
               *extra])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_reports_may_not_replace_an_input_or_share_a_file(clips, checkpoints, tmp_path, capsys):
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(checkpoints["style"].read_bytes())  # a copy: a failing check would replace it
    base = [str(clips / "a.mp4"), "--out-dir", str(tmp_path / "o"), "--checkpoint", str(ckpt), "--overwrite"]
    assert main([*base, "--json", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert err == f"stylize-batch: error: --json {ckpt} would overwrite the input --checkpoint {ckpt}\n"
    report = tmp_path / "r.txt"
    assert main([*base, "--json", str(report), "--markdown", str(report)]) == 1
    assert "two outputs share" in capsys.readouterr().err
    assert ckpt.read_bytes() == checkpoints["style"].read_bytes() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("text", ["[]", '{"version": 1}', '{"version": 1, "plans": {}, "segments": {"k": 3}}',
                                  "{"])
def test_unreadable_manifest_is_one_line(clips, checkpoints, tmp_path, capsys, text):
    """A manifest that is not ours (valid JSON of another shape, or no JSON): one line, before any work."""
    manifest = tmp_path / "o" / ".stylize-batch" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(text)
    rc = main([str(clips / "c.mov"), "--out-dir", str(tmp_path / "o"), "--checkpoint", str(checkpoints["style"])])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert err.startswith(f"stylize-batch: error: {manifest} is unreadable (") and err.endswith(
        "); remove it to start over\n")
    assert manifest.read_text() == text and sorted(p.name for p in manifest.parent.iterdir()) == ["lock",
                                                                                                 "manifest.json"]


def test_one_out_dir_one_run(clips, checkpoints, tmp_path, capsys):
    """Two runs into one --out-dir with different --work-dir would write the same outputs: the second is refused."""
    from stylize_video.pipeline.batch.manifest import locked

    out = tmp_path / "o"
    with locked(tmp_path / "w1", out):
        rc = main([str(clips / "c.mov"), "--out-dir", str(out), "--work-dir", str(tmp_path / "w2"),
                   "--checkpoint", str(checkpoints["style"])])
    assert rc == 1
    assert capsys.readouterr().err == f"stylize-batch: error: --out-dir {out} is in use by another stylize-batch run\n"
    assert not (tmp_path / "w2").exists()


def test_empty_segment_folders_are_removed(tmp_path):
    from stylize_video.pipeline.batch.manifest import remove_empty_folders

    (tmp_path / "segments" / "a-1").mkdir(parents=True)
    (tmp_path / "segments" / "b-2").mkdir()
    (tmp_path / "segments" / "b-2" / "00000-x.nut").write_bytes(b"x")
    remove_empty_folders(tmp_path / "segments")
    assert [p.name for p in (tmp_path / "segments").iterdir()] == ["b-2"]
    (tmp_path / "segments" / "b-2" / "00000-x.nut").unlink()
    remove_empty_folders(tmp_path / "segments")
    assert not (tmp_path / "segments").exists()


def test_local_workers_one_per_gpu(monkeypatch):
    """--device auto/cuda: one worker per GPU (--workers N share them round-robin); cuda:N or cpu: N on it."""
    import torch
    from stylize_video.pipeline.batch.cli import local_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a 3-GPU machine, as torch would report it
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert local_devices("auto", None) == local_devices("cuda", None) == ["cuda:0", "cuda:1", "cuda:2"]
    assert local_devices("cuda", 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert local_devices("cuda:1", 2) == ["cuda:1", "cuda:1"]
    assert local_devices("cpu", None) == ["cpu"] and local_devices("cpu", 2) == ["cpu", "cpu"]
    with pytest.raises(StylizeError, match="this machine has 3 CUDA device"):
        local_devices("cuda:5", None)
