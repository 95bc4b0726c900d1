"""What holds for every console script: float options parse with ``cliargs.number`` (finite, in range, exit 2),
``--help``, ``--version`` and ``stylize-export list`` load neither torch nor onnx, every script has ``--version``,
and Ctrl-C during the heavy imports exits 130."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stylize_video import cliargs

CLIS = {"stylize-train": "stylize_video.train.cli", "stylize-export": "stylize_video.export.cli",
        "stylize-video": "stylize_video.pipeline.cli", "stylize-bench": "stylize_video.benchmarks.cli",
        "stylize-batch": "stylize_video.pipeline.batch.cli"}


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser and sub-parser of the four scripts, by its prog."""
    import importlib

    found: dict[str, argparse.ArgumentParser] = {}
    todo = [importlib.import_module(module).build_parser() for module in CLIS.values()]
    while todo:
        parser = todo.pop()
        found[parser.prog] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return found


def test_every_float_option_is_a_checked_number() -> None:
    floats = [f"{prog} {a.option_strings[0]}" for prog, p in _parsers().items() for a in p._actions
              if a.type is float]
    assert floats == []  # type=float takes nan, inf and -1 without a word
    numbers = {f"{prog} {a.option_strings[0]}" for prog, p in _parsers().items() for a in p._actions
               if getattr(a.type, "__name__", "") == "number"}
    assert {"stylize-train style --lr", "stylize-train sr --blur-sigma", "stylize-video --duration",
            "stylize-video --speed", "stylize-bench --budget-s", "stylize-batch --segment-seconds"} <= numbers


def test_every_integer_option_is_a_checked_integer() -> None:
    plain = [f"{prog} {a.option_strings[0]}" for prog, p in _parsers().items() for a in p._actions
             if a.type is int and not a.choices]
    assert plain == []  # type=int takes 0 and -5 where a count is meant: exit 1 later, or worse, a hang
    integers = {f"{prog} {a.option_strings[0]}" for prog, p in _parsers().items() for a in p._actions
                if getattr(a.type, "__name__", "") == "integer"}
    assert {"stylize-video --max-frames", "stylize-video --queue-size", "stylize-video --gop", "stylize-video --crf",
            "stylize-batch --workers", "stylize-bench --iters", "stylize-train style --iterations",
            "stylize-export engine --workspace"} <= integers


def test_integer() -> None:
    assert cliargs.integer(ge=1)("3") == 3 and cliargs.integer()("-5") == -5
    for parse, text, message in ((cliargs.integer(ge=1), "0", "must be >= 1, got '0'"),
                                 (cliargs.integer(gt=0), "0", "must be > 0, got '0'"),
                                 (cliargs.integer(ge=0, le=5), "9", "must be <= 5, got '9'"),
                                 (cliargs.integer(), "1.5", "expected an integer, got '1.5'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)


def test_number() -> None:
    parse = cliargs.number(gt=0)
    assert parse("1e-3") == 0.001
    for text, message in (("nan", "expected a finite number, got 'nan'"), ("-inf", "expected a finite number"),
                          ("0", "must be > 0, got '0'"), ("x", "expected a number, got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)
    assert cliargs.number(ge=0)("0") == 0.0


@pytest.mark.parametrize(("prog", "argv", "message"), [
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--lr", "nan"], "argument --lr: expected a finite"),
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--style-weight", "nan"], "--style-weight: expected a"),
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--tv-weight", "inf"], "--tv-weight: expected a"),
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--content-weight", "-1"], "must be >= 0, got '-1'"),
    ("stylize-train", ["sr", "--data", "d", "--out", "o", "--blur-sigma", "nan"], "--blur-sigma: expected a"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--duration", "inf"], "--duration: expected a finite"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--start", "nan"], "--start: expected a finite"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--speed", "nan"], "--speed: expected a finite"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--read-timeout", "nan"], "--read-timeout: expected"),
    ("stylize-bench", ["--random-weights", "style", "--budget-s", "0"], "--budget-s: must be > 0, got '0'"),
    ("stylize-batch", ["in.mp4", "--out-dir", "o", "--onnx", "m", "--segment-seconds", "nan"], "expected a finite"),
    # integers: a usage error, not an error after the model loaded
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--max-frames", "0"], "--max-frames: must be >= 1, got '0'"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--queue-size", "0"], "--queue-size: must be >= 1, got '0'"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--gop", "-5"], "argument --gop: must be >= 1, got '-5'"),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m", "--crf", "-1"], "argument --crf: must be >= 0, got '-1'"),
    ("stylize-batch", ["in.mp4", "--out-dir", "o", "--onnx", "m", "--workers", "0"], "--workers: must be >= 1"),
    ("stylize-bench", ["--random-weights", "style", "--iters", "0"], "argument --iters: must be >= 1, got '0'"),
    ("stylize-bench", ["--random-weights", "style", "--sizes", "0x0"], "both sides must be at least 1 pixel"),
    ("stylize-export", ["engine", "m.onnx", "m.plan", "--workspace", "0"], "--workspace: must be >= 1, got '0'"),
    ("stylize-export", ["engine", "m.onnx", "m.plan", "--builder-optimization-level", "9"], "must be <= 5, got '9'"),
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--iterations", "0"], "--iterations: must be >= 1"),
    ("stylize-train", ["style", "--data", "d", "--out", "o", "--style-size", "-3"], "--style-size: must be >= 0"),
])
def test_bad_numbers_are_usage_errors(prog, argv, message, capsys) -> None:
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(CLIS[prog]).main(argv)
    assert exc.value.code == cliargs.EXIT_USAGE
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_json_and_its_old_alias_together_are_a_usage_error(capsys) -> None:
    from stylize_video.pipeline.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["in.mp4", "o.mp4", "--onnx", "m", "--stats-json", "a.json", "--json", "b.json"])
    assert exc.value.code == cliargs.EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "stylize-video: error: --stats-json and --json both given: they name the same output; give only --json")
    assert build_parser().parse_args(["i", "o", "--onnx", "m", "--json", "a", "--json", "b"]).json == "b"


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STYLIZE_CACHE"} | {"STYLIZE_CACHE": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path, check=False)


@pytest.mark.parametrize("prog", CLIS)
def test_version(prog, capsys) -> None:
    import importlib

    import stylize_video

    with pytest.raises(SystemExit) as exc:  # (before the required arguments are looked for)
        importlib.import_module(CLIS[prog]).main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"{prog} {stylize_video.__version__}\n"
    assert stylize_video.__version__[0].isdigit()  # the installed package's, from its metadata


def test_help_and_export_list_load_neither_torch_nor_onnx(tmp_path: Path) -> None:
    # One interpreter for all: each --help runs main() as the console script does, then the modules are listed.
    code = f"""
import contextlib, importlib, io, sys
for module, argv in {[(m, [flag]) for m in CLIS.values() for flag in ("--help", "--version")]
                     + [("stylize_video.export.cli", ["list"])]!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        importlib.import_module(module).main(argv)
print(sorted(m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules))
"""
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("prog", "argv"), [
    ("stylize-train", ["style", "--style-image", "s.png", "--data", "d", "--out", "o", "--device", "cpu"]),
    ("stylize-export", ["onnx", "m.pth", "m.onnx"]),
    ("stylize-video", ["in.mp4", "o.mp4", "--onnx", "m.onnx"]),
    ("stylize-bench", ["--random-weights", "style"]),
    ("stylize-batch", ["in.mp4", "--out-dir", "o", "--onnx", "m.onnx"]),
])
def test_ctrl_c_during_the_heavy_imports_exits_130(prog, argv, tmp_path: Path) -> None:
    """Ctrl-C during the seconds the heavy imports take: ``PROG: interrupted`` and 130, not a traceback."""
    code = f"""
import sys

class CtrlC:  # raises where a real Ctrl-C would land: inside the first heavy import (torch, onnx, numpy, PyAV)
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "onnx", "numpy", "av"):
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
from {CLIS[prog]} import main
sys.exit(main({argv!r}))
"""
    proc = _python(code, tmp_path)
    assert (proc.returncode, proc.stderr.strip()) == (cliargs.EXIT_INTERRUPTED, f"{prog}: interrupted")


def test_bench_help_describes_it_in_plain_words(capsys) -> None:
    from stylize_video.benchmarks.cli import build_parser

    description = build_parser().description
    assert description.startswith("What each optimisation buys") and "`" not in description


def test_constants_kept_out_of_the_parsers_imports_match_their_sources() -> None:
    """The parsers spell a few choices out, so --help needs no torch; they must stay what the code accepts."""
    from stylize_video.export import cli as export_cli
    from stylize_video.export.onnx_export import DEFAULT_OPSET, EXPORTERS
    from stylize_video.pipeline.batch import cli as batch_cli
    from stylize_video.pipeline.batch.segments import DEFAULT_SEGMENT_SECONDS
    from stylize_video.train import cli as train_cli
    from stylize_video.train.losses import PRESETS

    assert train_cli.LOSS_NETS == tuple(sorted(PRESETS))
    assert batch_cli.DEFAULT_SEGMENT_SECONDS == DEFAULT_SEGMENT_SECONDS
    assert (export_cli.DEFAULT_OPSET, export_cli.EXPORTER_CHOICES) == (DEFAULT_OPSET, tuple(sorted(EXPORTERS)))
