"""What every binary shares: one-line user errors and the absl entry point."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn

from absl import app, flags


def fail(prog: str, message: str) -> NoReturn:
    """Print `prog: error: message` on stderr and exit 1 (no traceback)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)


def first_line(error: BaseException) -> str:
    """An exception as one line: its message's first line, else its type."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def parse_flags(prog: str, argv: list[str]) -> list[str]:
    """absl's parser, with a bad flag reported as one line (no usage dump)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(prog, str(e))


def run(prog: str, main: Callable[[list[str]], object]) -> None:
    """Console-script entry point: `app.run` with the one-line parser."""
    app.run(main, flags_parser=lambda argv: parse_flags(prog, argv))
