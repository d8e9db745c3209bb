"""Running a binary's main() in-process, as the CLI tests do."""

from __future__ import annotations

import contextlib
import importlib
import io

from absl import flags
from absl.testing import flagsaver


def run_main(module_name: str, args, prog: str | None = None, after_dashes=()) -> tuple[int, str, str]:
    """Parses `args` and runs `module_name`.main under flagsaver (`after_dashes`:
    the arguments after `--`, which `_cli.run` hands to main unparsed).

    Returns (exit code, stdout, stderr); the code is 0 when main returns.
    """
    module = importlib.import_module(module_name)
    prog = prog or module_name
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with flagsaver.flagsaver(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        flags.FLAGS.unparse_flags()
        flags.FLAGS([prog, *args])
        try:
            module.main([prog, *after_dashes])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()
