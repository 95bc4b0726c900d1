"""``stylize_video.cliargs``: the shared flags parse the same way, JSON output is atomic, outputs are refused."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from pathlib import Path

import pytest
import torch
from stylize_video import cliargs
from stylize_video.errors import StylizeError


def _parser(positional_free: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prog")
    if not positional_free:
        p.add_argument("input")
    cliargs.add_json_option(p, positional_free=positional_free, aliases=("--stats-json",))
    cliargs.add_device_option(p)
    cliargs.add_overwrite_option(p)
    cliargs.add_quiet_option(p)
    return p


def test_json_alone_means_stdout_only_without_positionals(capsys) -> None:
    p = _parser(positional_free=True)
    assert p.parse_args(["--json"]).json == "-"
    assert p.parse_args(["--json", "r.json"]).json == "r.json"
    assert p.parse_args([]).json is None
    with_pos = _parser(positional_free=False)
    assert with_pos.parse_args(["in.mp4", "--stats-json", "s.json"]).json == "s.json"  # hidden alias, same dest
    assert "--stats-json" not in with_pos.format_help()
    with pytest.raises(SystemExit) as exc:
        with_pos.parse_args(["in.mp4", "--json"])
    assert exc.value.code == cliargs.EXIT_USAGE and "expected one argument" in capsys.readouterr().err


def test_shared_flags_parse_the_same_everywhere(capsys) -> None:
    args = _parser(True).parse_args(["-q", "--overwrite", "--device", "cuda:3"])
    assert (args.quiet, args.overwrite, args.device) == (True, True, "cuda:3")
    assert _parser(True).parse_args([]).device == "auto"
    for bad in ("gpu", "cuda:x", "cuda:", "CPU"):
        with pytest.raises(SystemExit) as exc:
            _parser(True).parse_args(["--device", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"prog: error: argument --device: expected auto, cpu, cuda or cuda:N, got {bad!r}" in err


def test_resolve_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cliargs.resolve_device("auto") == torch.device("cpu")
    assert cliargs.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(StylizeError, match=r"^--device cuda:0 asked for, but this PyTorch has no usable CUDA"):
        cliargs.resolve_device("cuda:0")
    with pytest.raises(StylizeError, match="--device must be auto, cpu, cuda or cuda:N, got 'mps'"):
        cliargs.resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cliargs.resolve_device("auto") == torch.device("cuda")
    with pytest.raises(StylizeError, match=r"--device cuda:1: this machine has 1 CUDA device\(s\)"):
        cliargs.resolve_device("cuda:1")


def test_write_json_to_stdout_is_the_document_alone(capsys) -> None:
    cliargs.write_json({"a": [1, 2.5, None]}, "-")
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": [1, 2.5, None]} and out.endswith("}\n")


def test_write_json_is_atomic(tmp_path, monkeypatch) -> None:
    dst = tmp_path / "r.json"
    dst.write_text("old")
    seen = []

    def replace(src, target):  # the document is complete under a temporary name before it takes the final one
        seen.append((os.path.dirname(src), json.loads(Path(src).read_text()), Path(target).read_text()))
        return real(src, target)

    real = os.replace
    monkeypatch.setattr(cliargs.os, "replace", replace)
    cliargs.write_json({"x": 1}, dst)
    assert seen == [(str(tmp_path), {"x": 1}, "old")]
    assert json.loads(dst.read_text()) == {"x": 1} and os.listdir(tmp_path) == ["r.json"]

    def fail(src, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cliargs.os, "replace", fail)
    with pytest.raises(StylizeError, match=r"cannot write .*r\.json: No space left on device"):
        cliargs.write_json({"x": 2}, dst)
    assert json.loads(dst.read_text()) == {"x": 1} and os.listdir(tmp_path) == ["r.json"]  # old kept, no leftovers
    monkeypatch.undo()
    cliargs.write_json({"x": [float("nan"), float("inf"), 1.5]}, tmp_path / "nan.json")  # JSON has no NaN/inf
    assert json.loads((tmp_path / "nan.json").read_text()) == {"x": [None, None, 1.5]}


def test_check_output(tmp_path) -> None:
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    cliargs.check_output(None, overwrite=False)
    cliargs.check_output("-", overwrite=False)
    cliargs.check_output(tmp_path / "new.json", overwrite=False)
    cliargs.check_output(taken, overwrite=True)
    cases = {taken: "exists; pass --overwrite to replace it", tmp_path: "is a directory",
             tmp_path / "no" / "r.json": "folder does not exist"}
    for path, message in cases.items():
        with pytest.raises(StylizeError, match=f"^--json {re.escape(str(path))}.*{message}"):
            cliargs.check_output(path, overwrite=False, flag="--json")


def test_progress_only_on_a_terminal_and_never_quiet() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert cliargs.progress_enabled(False, Tty()) and not cliargs.progress_enabled(True, Tty())
    assert not cliargs.progress_enabled(False, io.StringIO())  # a pipe or a log file: no bar
    assert cliargs.progress_bar(quiet=False, total=3).disable  # pytest's stderr is not a terminal


@pytest.mark.parametrize(("raised", "code", "line"), [
    (None, cliargs.EXIT_OK, None),
    (StylizeError("bad input"), cliargs.EXIT_ERROR, "prog: error: bad input"),
    (KeyboardInterrupt(), cliargs.EXIT_INTERRUPTED, "prog: interrupted"),
    (BrokenPipeError(32, "Broken pipe"), cliargs.EXIT_ERROR, "prog: error: output closed by its reader (broken pipe)"),
])
def test_run_cli_exit_codes(raised, code, line, capsys) -> None:
    from stylize_video.errors import run_cli

    def main(argv):
        if raised is not None:
            raise raised
        return 0

    assert run_cli("prog", main, []) == code
    err = capsys.readouterr().err.strip()
    assert err == (line or "")
