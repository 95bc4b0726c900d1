"""``stylize_video.outfiles``: temporary names within NAME_MAX, atomic writes with the umask's mode, FIFOs and
devices written in place, outputs checked before work (long names, uncreatable folders, outputs = inputs)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from stylize_video.errors import StylizeError
from stylize_video.outfiles import (
    check_distinct,
    check_output,
    fit_name,
    partial_name,
    rename_partial,
    write_atomic,
    writes_in_place,
)

NAME_MAX = 255


def test_fit_name_keeps_temporary_names_within_the_limit_and_apart(tmp_path: Path) -> None:
    assert fit_name("out.mp4", before=".", after=".123@host.inprogress") == ".out.mp4.123@host.inprogress"
    a, b = "a" * 240 + "1.mp4", "a" * 240 + "2.mp4"  # valid names (245 bytes) that share 240 characters
    ta = fit_name(a, before=".", after=".4194303@a-long-host-name.inprogress", folder=tmp_path)
    tb = fit_name(b, before=".", after=".4194303@a-long-host-name.inprogress", folder=tmp_path)
    assert len(ta.encode()) == len(tb.encode()) == NAME_MAX and ta != tb
    assert ta.startswith("." + "a" * 200) and ta.endswith(".inprogress")
    (tmp_path / ta).write_bytes(b"")  # the file system takes it
    wide = "é" * 126 + ".json"  # 257 bytes: too long itself; fitted by whole characters, never half of one
    fitted = fit_name(wide, after=".partial", folder=tmp_path)
    assert len(fitted.encode()) <= NAME_MAX and fitted.encode().decode("utf-8") == fitted


def test_write_atomic_honours_the_umask_and_long_names(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "r.json", b"{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # mkstemp would have made it 0600
    long = tmp_path / ("r" * 245 + ".json")  # fits; ".NAME.PID-RANDOM.partial" would not, unshortened
    assert write_atomic(long, b"[1]\n").read_bytes() == b"[1]\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["r.json", long.name])  # no temporary left


def test_fifos_and_devices_are_written_in_place_never_replaced(tmp_path: Path, fifo) -> None:
    path, read = fifo
    assert writes_in_place(path) and writes_in_place("/dev/null") and not writes_in_place(tmp_path / "x.json")
    check_output(path, overwrite=False, flag="--json")  # no "exists": nothing is replaced
    check_output("/dev/null", overwrite=False, flag="--json")
    write_atomic(path, b'{"a": 1}\n')
    assert read() == b'{"a": 1}\n' and stat.S_ISFIFO(path.stat().st_mode)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file was made beside it
    write_atomic("/dev/null", b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_output_refuses_long_names_and_uncreatable_folders_on_one_line(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300 + ".json")
    with pytest.raises(StylizeError, match=r"^cannot write --json .*: File name too long$"):
        check_output(too_long, overwrite=False, flag="--json")
    with pytest.raises(StylizeError, match=r"^cannot write .*: File name too long$"):
        check_output(tmp_path / ("d" * 300) / "r.json", overwrite=True)
    check_output(tmp_path / ("x" * 250 + ".json"), overwrite=False)  # fits: its probe file is shortened
    assert os.listdir(tmp_path) == []  # the probe is removed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, where no file can be created")
def test_check_output_creates_a_file_to_know_the_folder_takes_one() -> None:
    # os.access() says yes as root; only creating a file shows that /proc takes none.
    with pytest.raises(StylizeError, match=r"^--json /proc/x\.json: cannot create files in /proc: "):
        check_output("/proc/x.json", overwrite=False, flag="--json")


def test_check_distinct(tmp_path: Path) -> None:
    video, model, data = tmp_path / "in.mp4", tmp_path / "m.pth", tmp_path / "hr"
    for p in (video, model):
        p.write_bytes(b"x")
    data.mkdir()
    (data / "im0.png").write_bytes(b"png")
    os.link(model, tmp_path / "hard.pth")
    ok_inputs = [("", video), ("--checkpoint", model), ("--data", data), ("--style", None)]
    check_distinct(inputs=ok_inputs, outputs=[("output", tmp_path / "o.mp4"), ("--json", "-"),
                                              ("--json2", data / "new.json")])  # a new file in a data folder
    cases = [
        ([("output", tmp_path / "o.mp4"), ("--json", tmp_path / "sub" / ".." / "o.mp4")],
         rf"^two outputs share {tmp_path}/o\.mp4 \(output .*o\.mp4 and --json .*\.\./o\.mp4\)$"),
        ([("--json", video)], rf"^--json {video} would overwrite the input {video}$"),
        ([("output", tmp_path / "hard.pth")], r"^output .*hard\.pth would overwrite the input --checkpoint .*m\.pth$"),
        ([("--json", data / "im0.png")], r"^--json .*im0\.png would overwrite a file in the input folder --data "),
    ]
    for outputs, message in cases:
        with pytest.raises(StylizeError, match=message):
            check_distinct(inputs=ok_inputs, outputs=outputs)
    runs = tmp_path / "run" / "samples"
    runs.mkdir(parents=True)
    (runs / "s.png").write_bytes(b"png")
    with pytest.raises(StylizeError, match=r"^the input --style-image .*s\.png is inside the output folder --out "):
        check_distinct(inputs=[("--style-image", runs / "s.png")], outputs=[("--out", runs)])
    check_distinct(inputs=[], outputs=[("--json", "/dev/null"), ("--markdown", "/dev/null")])  # in place, shared


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc/self/fd")
def test_a_file_behind_dev_stdout_is_written_in_place(tmp_path: Path) -> None:
    """``--json /dev/stdout > log``: the link in /dev (or /proc/PID/fd) is kept, the file behind it written."""
    log = tmp_path / "log.txt"
    with open(log, "wb") as fh:
        fd_link = f"/proc/self/fd/{fh.fileno()}"
        assert writes_in_place(fd_link) and not writes_in_place(log)
        check_output(fd_link, overwrite=False, flag="--json")
        write_atomic(fd_link, b"{}\n")
    assert log.read_bytes() == b"{}\n" and os.listdir(tmp_path) == ["log.txt"]


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links (FAT)"])
def test_rename_partial_never_replaces_a_file(tmp_path: Path, monkeypatch, links: bool) -> None:
    if not links:
        def no_link(src, dst):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    out = tmp_path / "out.mp4"
    (tmp_path / "out.partial.mp4").write_bytes(b"mine")
    kept = []
    for data in (b"first", b"second"):
        tmp = tmp_path / ".tmp"
        tmp.write_bytes(data)
        kept.append(rename_partial(tmp, out))
        assert not tmp.exists()
    assert [p.name for p in kept] == ["out.partial-2.mp4", "out.partial-3.mp4"]
    assert [p.read_bytes() for p in kept] == [b"first", b"second"]
    assert (tmp_path / "out.partial.mp4").read_bytes() == b"mine"
    tmp.write_bytes(b"third")
    assert rename_partial(tmp, out, overwrite=True).read_bytes() == b"third"  # --overwrite: the first name
    assert partial_name(out, 1).name == "out.partial.mp4"
