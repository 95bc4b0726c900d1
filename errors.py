"""One error type for every user-facing failure, and the CLI wrapper that prints it on one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence


class StylizeError(Exception):
    """A problem with the user's input or environment, reported as one line, exit status 1."""


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a console-script ``main``; turn ``StylizeError`` into ``prog: error: message`` and exit 1.

    Exit codes (``stylize_video.cliargs`` has them as constants): 0 done, 1 error (one line), 2 usage (argparse,
    raised before this returns), 130 Ctrl-C; batch commands add 3 (some inputs failed).
    """
    try:
        return int(main(argv) or 0)
    except StylizeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout (``| head``) or of a stream went away
        _detach_stdout()
        print(f"{prog}: error: output closed by its reader (broken pipe)", file=sys.stderr)
        return 1


def _detach_stdout() -> None:
    """Point fd 1 at /dev/null, so Python's flush of stdout at exit does not fail a second time (Python docs,
    "Note on SIGPIPE" in the signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass
