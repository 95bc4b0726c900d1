"""Live command line: planning, errors, and an end-to-end run with a real (random-weight) TransformerNet."""

from __future__ import annotations

import json
import sys

import av
import pytest

from pipeline.live.cli import build_parser, main, parse_bitrate, plan, wants_live
from pipeline.live.sinks import VirtualCameraSink
from train.checkpoint import ModelInfo, save_checkpoint
from train.errors import StylizeError
from train.networks import build_network


def _args(*argv: str):
    return build_parser().parse_args([*argv, "--model", "m.pth"])


def test_plan_defaults(flat_clip):
    p = plan(str(flat_clip), "udp://127.0.0.1:5000", _args(str(flat_clip), "udp://127.0.0.1:5000"))
    assert (p.input.kind, p.output.format, p.realtime) == ("file", "mpegts", False)  # files never drop by default
    a = _args("udp://127.0.0.1:5000", "-", "--format", "nut")
    p = plan("udp://127.0.0.1:5000", "-", a)
    assert (p.input.live, p.realtime, p.output.format) == (True, True, "nut")  # live inputs drop by default
    a = _args(str(flat_clip), "-", "--pace", "--realtime")
    assert plan(str(flat_clip), "-", a).realtime


def test_wants_live(flat_clip, tmp_path):
    file_args = _args(str(flat_clip), "o.mp4")
    assert not wants_live(str(flat_clip), str(tmp_path / "o.mp4"), file_args)
    assert wants_live(str(flat_clip), "udp://127.0.0.1:1", file_args)
    assert wants_live("v4l2:/dev/video0", str(tmp_path / "o.mp4"), file_args)
    assert wants_live(str(flat_clip), str(tmp_path / "o.mp4"), _args(str(flat_clip), "o.mp4", "--pace"))


@pytest.mark.parametrize(("argv", "match"), [
    (["{clip}"], "no output"),
    (["udp://127.0.0.1:5000", "-", "--pace"], "--pace is for files"),
])
def test_plan_exception(flat_clip, argv, match):
    argv = [a.format(clip=flat_clip) for a in argv]
    a = _args(*argv)
    with pytest.raises(StylizeError, match=match):
        plan(a.input, a.output, a)


def test_bitrate():
    assert parse_bitrate("4M") == 4_000_000 and parse_bitrate("2500k") == 2_500_000 and parse_bitrate(None) is None
    with pytest.raises(StylizeError, match="--bitrate"):
        parse_bitrate("fast")


def test_vcam_without_pyvirtualcam(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    with pytest.raises(StylizeError, match=r"pip install 'stylize-video\[live\]'"):
        VirtualCameraSink(fps=30)


def test_end_to_end_paced_file(flat_clip, tmp_path, capsys):
    """A checkpoint, a paced file standing in for a camera, a file output and --stats-json."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "style.pth", build_network("transformer_net"),
                           ModelInfo(arch="transformer_net", task="style", scale=1))
    out, stats = tmp_path / "live.mkv", tmp_path / "stats.json"
    # --realtime keeps the model calls few on a slow CPU: a paced 1 s clip, newest frame only.
    rc = main([str(flat_clip), str(out), "--model", str(ckpt), "--device", "cpu", "--pace", "--realtime",
               "--gop", "5", "--stats-json", str(stats)])
    assert rc == 0
    assert "frames out of 25" in capsys.readouterr().err
    d = json.loads(stats.read_text())
    assert d["frames_in"] == 25 and d["frames_out"] + d["dropped"] == 25 and d["paced"] and d["realtime"]
    assert d["backend"] and {"p50_ms", "p95_ms", "p99_ms"} <= set(d["latency_ms"])
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == d["frames_out"]
    assert not list(tmp_path.glob("*.partial*"))


def test_cli_errors_are_one_line(flat_clip, capsys):
    assert main([str(flat_clip), "ftp://x/y", "--model", "m.pth"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-video: error: unsupported output URL scheme") and "\n" not in err
