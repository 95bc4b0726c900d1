"""Live mode through ``stylize-video``: planning, errors, and end-to-end runs with a real (random-weight) network."""

from __future__ import annotations

import json
import re
import threading

import av
import pytest
from stylize_video.errors import StylizeError
from stylize_video.pipeline.cli import build_parser, main
from stylize_video.pipeline.live.plan import plan_io
from stylize_video.train.checkpoint import ModelInfo, save_checkpoint
from stylize_video.train.networks import build_network


def _args(*argv: str):
    return build_parser().parse_args([*argv, "--checkpoint", "m.pth"])


def _plan(*argv: str):
    return plan_io(_args(*argv))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("m") / "style.pth", build_network("transformer_net"),
                           ModelInfo(arch="transformer_net", task="style", scale=1))


def test_plan_defaults(flat_clip):
    p = _plan(str(flat_clip), "udp://127.0.0.1:5000")
    assert (p.input.kind, p.output.format, p.realtime, p.live_input) == ("file", "mpegts", False, False)
    p = _plan("udp://127.0.0.1:5000", "-", "--format", "nut")
    assert (p.input.live, p.realtime, p.output.format) == (True, True, "nut")  # live inputs drop by default
    assert _plan(str(flat_clip), "-", "--pace").realtime  # a paced file stands in for a camera
    assert not _plan(str(flat_clip), "-", "--pace", "--no-realtime").realtime
    assert not _plan("udp://127.0.0.1:5000", "-", "--no-realtime").realtime
    assert _plan(str(flat_clip), "--vcam").output is None


@pytest.mark.parametrize(("argv", "match"), [
    (["{clip}"], "no output"),
    (["udp://127.0.0.1:5000", "-", "--pace"], "--pace is for files"),
    (["udp://127.0.0.1:5000", "-", "--start", "1"], "--start needs a file or stdin input"),
    (["{clip}", "{clip}", "--overwrite"], "would overwrite the input"),
    (["{clip}", "ftp://x/y"], "unsupported output URL scheme"),
    (["{clip}", "{folder}"], "^{folder} is a folder; give the output a file name, e.g. {folder}/out.mp4$"),
    (["{clip}", "{folder}.mp4"], "^{folder}.mp4 is a folder; give"),  # (before: no extension / is a directory)
])
def test_plan_exception(flat_clip, tmp_path, argv, match):
    (tmp_path / "f").mkdir()
    (tmp_path / "f.mp4").mkdir()
    names = {"clip": flat_clip, "folder": tmp_path / "f"}
    with pytest.raises(StylizeError, match=match.format(**{k: re.escape(str(v)) for k, v in names.items()})):
        _plan(*[a.format(**names) for a in argv])


def test_end_to_end_paced_realtime_file(flat_clip, tmp_path, capsys, ckpt):
    """A checkpoint, a paced file standing in for a camera, realtime drops, a file output and --stats-json."""
    out, stats = tmp_path / "live.mkv", tmp_path / "stats.json"
    # --realtime keeps the model calls few on a slow CPU: a paced 1 s clip, newest frame only.
    rc = main([str(flat_clip), str(out), "--checkpoint", str(ckpt), "--device", "cpu", "--pace", "--realtime",
               "--gop", "5", "--stats-json", str(stats)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "frames dropped" in err and "latency p50" in err
    d = json.loads(stats.read_text())
    assert d["frames_in"] == 25 and d["frames"] + d["dropped"] == 25 and d["paced"] and d["realtime"]
    assert d["backend"] == "torch" and {"p50_ms", "p95_ms", "p99_ms"} <= set(d["latency_ms"])
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == d["frames"]
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob(".*inprogress"))


def test_end_to_end_udp_input(flat_clip, tmp_path, capsys, ckpt, udp_port, live):
    """``stylize-video udp://... out.mkv``: a live input (realtime by default) through main(), to a file."""
    from stylize_video.pipeline.io.source import FileSource
    from stylize_video.pipeline.live.outputs import parse_output
    from stylize_video.pipeline.live.sinks import StreamSink
    from stylize_video.pipeline.live.source import PacedSource

    done = threading.Event()

    def send() -> None:  # loop the clip until the run has its frames (datagrams before the bind are lost)
        while not done.is_set():
            live.run(PacedSource(FileSource(flat_clip), speed=2.0),
                     StreamSink(parse_output(f"udp://127.0.0.1:{udp_port}")), live.Negate())

    tx = threading.Thread(target=send, daemon=True)
    tx.start()
    out, stats = tmp_path / "cam.mkv", tmp_path / "s.json"
    try:
        rc = main([f"udp://127.0.0.1:{udp_port}", str(out), "--checkpoint", str(ckpt), "--device", "cpu",
                   "--max-frames", "8", "--read-timeout", "5", "--stats-json", str(stats), "--preset", "ultrafast"])
    finally:
        done.set()
        tx.join(20)
    assert rc == 0, capsys.readouterr().err
    d = json.loads(stats.read_text())
    assert d["realtime"] and d["frames_in"] == 8 and d["frames"] + d["dropped"] == 8 and d["frames"] >= 1
    assert d["input"].startswith("udp://") and d["output"] == str(out)
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == d["frames"]


def test_cli_errors_are_one_line(flat_clip, capsys):
    assert main([str(flat_clip), "ftp://x/y", "--checkpoint", "m.pth"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-video: error: unsupported output URL scheme") and "\n" not in err
    assert main(["udp://127.0.0.1:1", "-", "--checkpoint", "m.pth", "--pace"]) == 1
    assert "--pace is for files" in capsys.readouterr().err
