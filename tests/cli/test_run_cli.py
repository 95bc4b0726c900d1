"""``errors.run_cli``, shared by every console script: a Ctrl-C that a library turned into another exception is
still an interrupt (130), SIGTERM is handled like Ctrl-C (143), and a worker abandoned inside native code by a
forced stop does not take the interpreter's finalisation down with it (SIGABRT)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from stylize_video import cliargs
from stylize_video.errors import StylizeError, Terminated, interrupt_in_chain, on_sigterm, run_cli


def _import_failed_by_ctrl_c(argv):
    """What ONNX Runtime's import does when Ctrl-C lands in its initialisation."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise ImportError("initialization failed")  # (its __context__: the KeyboardInterrupt)


def _error_from_ctrl_c(argv):
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise StylizeError("loading the model failed") from exc


@pytest.mark.parametrize("main", [_import_failed_by_ctrl_c, _error_from_ctrl_c])
def test_an_exception_raised_by_a_ctrl_c_is_the_interrupt(main, capsys):
    assert run_cli("prog", main, []) == cliargs.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "prog: interrupted\n"


def test_other_exceptions_are_not_interrupts(capsys):
    def broken(argv):
        raise ImportError("initialization failed")

    with pytest.raises(ImportError):  # a real bug keeps its traceback
        run_cli("prog", broken, [])
    assert run_cli("prog", lambda argv: (_ for _ in ()).throw(StylizeError("bad")), []) == cliargs.EXIT_ERROR
    assert capsys.readouterr().err == "prog: error: bad\n"
    assert interrupt_in_chain(ValueError("x")) is None


def test_onnxruntime_import_interrupted_in_stylize_video(tmp_path, monkeypatch, capsys):
    """The real path: stylize-video imports onnxruntime (faked here to fail as it does on Ctrl-C)."""
    import onnx
    from onnx import TensorProto, helper
    from stylize_video.pipeline.cli import main
    from stylize_video.pipeline.synth import make_test_clip

    clip = make_test_clip(tmp_path / "in.mp4", frames=2, audio=False)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "id", [x], [y])
    model = tmp_path / "id.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))

    class OrtInterrupted:
        def find_spec(self, name, path=None, target=None):
            if name == "onnxruntime":
                _import_failed_by_ctrl_c(None)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)  # (put back after the test)
    monkeypatch.setattr(sys, "meta_path", [OrtInterrupted(), *sys.meta_path])
    rc = main([str(clip), str(tmp_path / "out.mp4"), "--onnx", str(model), "--device", "cpu"])
    assert (rc, capsys.readouterr().err) == (cliargs.EXIT_INTERRUPTED, "stylize-video: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["id.onnx", "in.mp4"]


def test_sigterm_is_raised_as_terminated_and_the_handler_put_back(capsys):
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (a Ray test in this process may have set its own)
    try:
        def main(argv):
            assert signal.getsignal(signal.SIGTERM) is on_sigterm
            signal.raise_signal(signal.SIGTERM)
            raise AssertionError("not stopped")

        assert run_cli("prog", main, []) == cliargs.EXIT_TERMINATED == 128 + signal.SIGTERM
        assert capsys.readouterr().err == "prog: terminated\n"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        def own(signum, frame):  # a program's own handler is left alone
            raise AssertionError

        signal.signal(signal.SIGTERM, own)
        assert run_cli("prog", lambda argv: 0 if signal.getsignal(signal.SIGTERM) is own else 5, []) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert issubclass(Terminated, KeyboardInterrupt)  # every Ctrl-C clean-up runs for it


def test_a_worker_abandoned_by_a_forced_stop_does_not_abort_the_exit(tmp_path):
    """A third Ctrl-C leaves a ``stylize-*`` worker inside a call: the process ends with 130 and its output
    flushed, without the finalisation (atexit) that would destroy a native runtime under that worker."""
    code = textwrap.dedent("""
        import atexit, sys, threading, time
        from stylize_video.errors import run_cli

        atexit.register(lambda: print("finalised"))

        def main(argv):
            threading.Thread(target=time.sleep, args=(60,), name="stylize-process", daemon=True).start()
            print("written", end="")  # (buffered: a pipe)
            raise KeyboardInterrupt

        sys.exit(run_cli("prog", main))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "written", "prog: interrupted\n")
