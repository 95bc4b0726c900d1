"""stylize-video command line: the main command, its summary/JSON, every bad input, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import av
import pytest
from stylize_video.pipeline.cli import main
from stylize_video.pipeline.synth import make_test_clip


@pytest.fixture
def clip(tmp_path):
    return make_test_clip(tmp_path / "in.mp4", frames=6)


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_main_command_with_json_summary(tmp_path, clip, checkpoints, capsys, vid):
    out, stats = tmp_path / "out.mkv", tmp_path / "stats.json"
    rc = main([str(clip), str(out), "--checkpoint", str(checkpoints["style"]), "--preset", "ultrafast",
               "--json", str(stats)])
    assert rc == 0, _err(capsys)
    err = _err(capsys)
    assert "6 frames in" in err and "per frame: decode" in err and "decode cpu, encode cpu" in err
    data = json.loads(stats.read_text())
    assert data["frames"] == 6 and data["backend"] == "torch" and {"decode", "process", "encode"} <= set(data["stage_s"])
    assert len(vid.frames(out)) == 6 and capsys.readouterr().out == ""


def test_json_to_stdout_is_the_summary_alone(tmp_path, clip, checkpoints, capsys):
    # --stats-json is the old spelling of --json, kept as a hidden alias; "-" is stdout.
    out = tmp_path / "out.mkv"
    rc = main([str(clip), str(out), "--checkpoint", str(checkpoints["style"]), "--preset", "ultrafast",
               "--max-frames", "2", "--stats-json", "-"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)  # stdout holds the JSON document and nothing else
    assert data["frames"] == 2 and data["output"] == str(out) and "2 frames in" in captured.err


def test_encoder_options(tmp_path, clip, checkpoints, capsys):
    out = tmp_path / "out.mp4"
    rc = main([str(clip), str(out), "--checkpoint", str(checkpoints["style"]), "--codec", "libx264", "--crf", "30",
               "--gop", "3", "--bitrate", "500k", "--pix-fmt", "yuv444p", "--quiet", "--max-frames", "4"])
    assert rc == 0, _err(capsys)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"
        keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
    assert len(keys) == 4 and keys[3]  # gop 3: frame 3 is a keyframe


def _bad(tmp_path, clip, checkpoints):
    (tmp_path / "text.mp4").write_text("not a video")
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        import numpy as np

        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        c.mux(s.encode(f))
        c.mux(s.encode(None))
    (tmp_path / "exists.mp4").write_bytes(b"old")
    (tmp_path / "exists.json").write_bytes(b"old")
    ck = str(checkpoints["style"])
    return {
        "missing input": ([str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"), "--checkpoint", ck], "input not found"),
        "not a video": ([str(tmp_path / "text.mp4"), str(tmp_path / "o.mp4"), "--checkpoint", ck],
                        "is not a readable video"),
        "no video stream": ([str(audio_only), str(tmp_path / "o.mp4"), "--checkpoint", ck], "has no video stream"),
        "output exists": ([str(clip), str(tmp_path / "exists.mp4"), "--checkpoint", ck], "exists; pass --overwrite"),
        "unwritable output": ([str(clip), str(tmp_path / "no" / "dir" / "o.mp4"), "--checkpoint", ck],
                              "output folder does not exist"),
        "unwritable fs": ([str(clip), "/proc/stylize-test-out.mp4", "--checkpoint", ck], "/proc/stylize-test-out.mp4"),
        "wrong kind": ([str(clip), str(tmp_path / "o.mp4"), "--onnx", ck], "--onnx expects an ONNX model"),
        "bad checkpoint": ([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", str(tmp_path / "text.mp4")],
                           "unknown model file kind"),
        "bad number": ([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", ck, "--crf", "52"], "--crf 52 is out of range for libx264: 0 to 51 (lower is better quality)"),
        "bad codec": ([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", ck, "--codec", "nope264"],
                      "not available"),
        "unwritable stats": ([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", ck, "--stats-json",
                              str(tmp_path / "no" / "s.json")], "s.json: folder does not exist"),
        "stats exists": ([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", ck, "--json",
                          str(tmp_path / "exists.json")], "exists.json exists; pass --overwrite"),
        "json and video on stdout": ([str(clip), "-", "--checkpoint", ck, "--json", "-"], "both go to stdout"),
    }


CASES = ["missing input", "not a video", "no video stream", "output exists", "unwritable output", "unwritable fs",
         "wrong kind", "bad checkpoint", "bad number", "bad codec", "unwritable stats", "stats exists",
         "json and video on stdout"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_and_no_complete_file(tmp_path, clip, checkpoints, capsys, case):
    argv, message = _bad(tmp_path, clip, checkpoints)[case]
    before = set(os.listdir(tmp_path))
    assert main(argv) == 1
    err = _err(capsys).strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylize-video: error: ") and message in err[0], err
    assert set(os.listdir(tmp_path)) == before  # nothing new, in particular no o.mp4
    assert (tmp_path / "exists.mp4").read_bytes() == b"old" and (tmp_path / "exists.json").read_bytes() == b"old"


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated")])  # timeout, docker stop
def test_ctrl_c_and_sigterm_keep_a_playable_partial_output(tmp_path, checkpoints, sig, code, word):
    # CPU and long enough that even a many-core machine is still busy when the signal arrives.
    src = make_test_clip(tmp_path / "long.mp4", width=128, height=96, frames=500, audio=True)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stylize_video.pipeline.cli", str(src), str(out), "--checkpoint",
                             str(checkpoints["style"]), "--preset", "ultrafast", "--gop", "5", "--device", "cpu"],
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        # The temporary file appears with the first muxed packet (PyAV writes the header lazily);
        # then let a few more frames through. The whole clip takes far longer than that here.
        while time.monotonic() < deadline and proc.poll() is None and not list(tmp_path.glob(".out.mp4.*.inprogress")):
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    partial = tmp_path / "out.partial.mp4"
    assert err.strip().splitlines()[-1] == f"stylize-video: {word}; partial output kept: {partial}"
    assert not out.exists() and not list(tmp_path.glob("*.inprogress"))
    with av.open(str(partial)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert 0 < n < 500


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU refusal of NVENC")
def test_nvenc_without_gpu_is_one_clear_line(tmp_path, clip, checkpoints, capsys):
    assert main([str(clip), str(tmp_path / "o.mp4"), "--checkpoint", str(checkpoints["style"]),
                 "--codec", "h264_nvenc"]) == 1
    err = _err(capsys).strip()
    assert err.startswith("stylize-video: error: ") and "NVENC" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("o*")) and not list(tmp_path.glob(".o*"))


def test_style_from_the_fetch_cache(tmp_path, clip, checkpoints, capsys, monkeypatch):
    monkeypatch.setenv("STYLIZE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o.mp4"
    assert main([str(clip), str(out), "--style", "mosaic", "--quiet"]) == 1
    assert "stylize-export fetch mosaic" in _err(capsys)
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    (models / "mosaic.pth").write_bytes(checkpoints["style"].read_bytes())
    assert main([str(clip), str(out), "--style", "mosaic", "--quiet", "--max-frames", "2"]) == 0, _err(capsys)
    assert out.is_file()
    assert main([str(clip), str(out), "--style", "starry", "--overwrite"]) == 1
    assert "unknown style" in _err(capsys)
