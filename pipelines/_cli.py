"""What every binary shares: one-line user errors, help, and the absl entry point.

`run(prog, main)` is every console script's entry point:
- `--help` (`-h`, `-?`, `--helpshort`) prints the binary's usage (its
  module docstring) and its own flags: those its module defines and those
  of the shared flag modules it imports (`pipelines._model_flags`), not
  TensorFlow's or absl's; exit 0.
- `--helpfull` prints the same, then every flag the process knows; exit 0.
- anything else goes to `absl.app.run` with a parser that reports a bad
  flag as one line (`prog: error: ...`, exit 1).

`OVERRIDE` goes with every flag definition (see there); the flags that
several binaries define alike live in `pipelines._shared_flags`.
"""

from __future__ import annotations

import math
import sys
import types
from typing import Callable, NoReturn

from absl import app, flags

#: Keyword arguments of every flag definition. Several binaries define some of
#: the same names (output_dir, progress, ...), and the tests, the demo and
#: notebooks import several of them into one process: absl refuses a second
#: definition without this. A shared name keeps one default everywhere
#: (tests/test_cli_flags.py checks it).
OVERRIDE = {"allow_override": True}

HELP_ARGS = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")
HELPFULL_ARGS = ("--helpfull", "-helpfull")


def fail(prog: str, message: str) -> NoReturn:
    """Print `prog: error: message` on stderr and exit 1 (no traceback)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)


def first_line(error: BaseException) -> str:
    """An exception as one line: its message's first line, else its type."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def define_finite_float(name: str, default, help: str, **kwargs) -> flags.FlagHolder:
    """`flags.DEFINE_float` that refuses nan and +-inf with one line at parse time.

    absl's float parser accepts "nan" and "inf", and its bounds let NaN
    through (every comparison with NaN is false); no float flag of these
    binaries has a meaning for either.
    """
    holder = flags.DEFINE_float(name, default, help, **kwargs)
    flags.register_validator(name, lambda value: value is None or math.isfinite(value),
                             message=f"--{name} must be a finite number")
    return holder


def parse_flags(prog: str, argv: list[str], after_dashes: bool = False) -> list[str]:
    """absl's parser, with a bad flag or a stray argument reported as one line (no usage dump).

    With `after_dashes`, the arguments after `--` are another tool's (Beam's
    pipeline options) and come back after argv[0], unparsed.
    """
    extra: list[str] = []
    if after_dashes and "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        fail(prog, str(e))
    if len(rest) > 1:  # every binary takes flags only
        fail(prog, f"unexpected arguments: {' '.join(rest[1:])}")
    return rest + extra


def _flag_modules(module: types.ModuleType) -> list[types.ModuleType]:
    """The binary's module and the shared flag modules (`pipelines._*`) it imports."""
    shared = [value for value in vars(module).values()
              if isinstance(value, types.ModuleType) and value.__name__.startswith("pipelines._")]
    return [module] + sorted(shared, key=lambda m: m.__name__)


def _render(flag: flags.Flag) -> str:
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    text = flags.text_wrap(f"{name}: {flag.help}", indent="    ", firstline_indent="  ")
    if flag.default_as_str:
        text += "\n" + flags.text_wrap(f"(default: {flag.default_as_str})", indent="    ")
    if flag.parser.syntactic_help:
        text += "\n" + flags.text_wrap(f"({flag.parser.syntactic_help})", indent="    ")
    return text


def own_flags(module: types.ModuleType) -> list[flags.Flag]:
    """The flags `--help` shows for a binary's module (see the module doc), by name.

    Found as the module-level flag holders (`_X = flags.DEFINE_...(...)`) of
    the module and its shared flag modules: absl's per-module lists lose a
    flag that another binary redefines (allow_override) in the same process.
    """
    names = {value.name for m in _flag_modules(module) for value in vars(m).values()
             if isinstance(value, flags.FlagHolder)}
    return [flags.FLAGS[name] for name in sorted(names) if name in flags.FLAGS]


def help_text(prog: str, module: types.ModuleType, full: bool = False) -> str:
    """The usage (module docstring) and the binary's flags; with `full`, every flag too."""
    doc = (module.__doc__ or prog).strip("\n")
    lines = [doc, "", "Flags:"] + [_render(flag) for flag in own_flags(module)]
    if full:
        lines += ["", "All flags (TensorFlow's and absl's included):", flags.FLAGS.get_help()]
    else:
        lines += ["", f"Try {prog} --helpfull for every flag (TensorFlow's and absl's included)."]
    return "\n".join(lines)


def _help_request(argv: list[str]) -> str | None:
    args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if any(a in HELPFULL_ARGS for a in args):
        return "full"
    if any(a in HELP_ARGS for a in args):
        return "short"
    return None


def run(prog: str, main: Callable[[list[str]], object], after_dashes: bool = False) -> None:
    """Console-script entry point: help (see the module doc), else `app.run` with the one-line parser.

    `after_dashes`: main takes the arguments after `--` (see `parse_flags`).
    """
    request = _help_request(sys.argv)
    if request:
        print(help_text(prog, sys.modules[main.__module__], full=request == "full"))
        sys.exit(0)
    app.run(main, flags_parser=lambda argv: parse_flags(prog, argv, after_dashes))
