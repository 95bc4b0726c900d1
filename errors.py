"""One error type for every user-facing failure, and the CLI wrapper that prints it on one line.

``run_cli`` also gives every console script the same stop signals: Ctrl-C (SIGINT, ``KeyboardInterrupt``) and
SIGTERM (what ``timeout``, systemd and ``docker stop`` send; raised as :class:`Terminated`, a
``KeyboardInterrupt``, so every clean-up that Ctrl-C runs runs for it too) end with ``PROG: interrupted`` /
``PROG: terminated`` and 128 + the signal number (130 / 143), as shells report a process killed by it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

# Threads whose names start with this run native code (the model, FFmpeg) for a pipeline run; the run joins
# them before it returns. One still alive when the interpreter exits (a forced stop abandoned it mid-call)
# would be inside C++ while the runtime's globals are destroyed: ``std::terminate``, SIGABRT.
WORKER_PREFIX = "stylize-"


class StylizeError(Exception):
    """A problem with the user's input or environment, reported as one line, exit status 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's ``KeyboardInterrupt`` would be (``on_sigterm``, installed by ``run_cli``)."""

    signum = signal.SIGTERM


def on_sigterm(signum: int, frame: object) -> None:
    """The SIGTERM handler ``run_cli`` installs: stop the way Ctrl-C stops (a pipeline run that is under way
    takes SIGTERM over while it runs, to keep what it wrote: ``stylize_video.pipeline.runner``)."""
    raise Terminated


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a console-script ``main``; turn ``StylizeError`` into ``prog: error: message`` and exit 1.

    Exit codes (``stylize_video.cliargs`` has them as constants): 0 done, 1 error (one line), 2 usage (argparse,
    raised before this returns), 130 Ctrl-C, 143 SIGTERM; batch commands add 3 (some inputs failed). An
    exception raised while handling a Ctrl-C (ONNX Runtime's import turns it into ``ImportError: initialization
    failed``) is the interrupt, not an error: its ``__cause__``/``__context__`` chain is searched for it.
    """
    previous = _handle_sigterm()
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt as exc:
        return _stopped(prog, exc)
    except BrokenPipeError:  # the reader of stdout (``| head``) or of a stream went away
        _detach_stdout()
        print(f"{prog}: error: output closed by its reader (broken pipe)", file=sys.stderr)
        return 1
    except Exception as exc:
        stop = interrupt_in_chain(exc)
        if stop is not None:
            return _stopped(prog, stop)
        if isinstance(exc, StylizeError):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` (or :class:`Terminated`) ``exc`` is or was raised while handling, if any."""
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        if isinstance(at, KeyboardInterrupt):
            return at
        seen.add(id(at))
        at = at.__cause__ or at.__context__
    return None


def _stopped(prog: str, exc: KeyboardInterrupt) -> int:
    """``PROG: interrupted`` / ``PROG: terminated`` and 128 + the signal's number."""
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    print(f"{prog}: {'terminated' if signum == signal.SIGTERM else 'interrupted'}", file=sys.stderr)
    code = 128 + int(signum)
    if any(t.is_alive() and t.name.startswith(WORKER_PREFIX) for t in threading.enumerate()):
        # A forced stop (a third Ctrl-C) left a worker inside native code: ending through the interpreter's
        # finalisation would destroy the runtime under it (SIGABRT). Everything we write is closed or renamed
        # by now; only the streams remain to flush.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _handle_sigterm() -> Callable | int | None:
    """Install ``on_sigterm`` where the default (killing the process) is in place; the previous handler, to put
    back, or None when nothing was installed (not the main thread, or SIGTERM already handled/ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, on_sigterm)
    return previous


def _detach_stdout() -> None:
    """Point fd 1 at /dev/null, so Python's flush of stdout at exit does not fail a second time (Python docs,
    "Note on SIGPIPE" in the signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass
