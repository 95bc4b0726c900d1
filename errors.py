"""One error type for every user-facing failure, and the CLI wrapper that prints it on one line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class StylizeError(Exception):
    """A problem with the user's input or environment, reported as one line, exit status 1."""


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a console-script ``main``; turn ``StylizeError`` into ``prog: error: message`` and exit 1."""
    try:
        return int(main(argv) or 0)
    except StylizeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
