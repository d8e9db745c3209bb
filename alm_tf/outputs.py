"""The one rule for a folder a binary writes (alm-convert, alm-merge,
alm-synth, alm-evaluate, alm-predict).

- A target folder that exists and is not empty is refused, one line naming
  it, unless `overwrite`; a target that is a file is always refused.
- A target that holds one of the command's inputs (or is one) is refused
  even with `overwrite`: replacing it would delete the input.
- Everything is written into a fresh staging folder beside the target
  (`.<name>.tmp-<pid>-<random>`, same file system) and swapped in only
  when the command succeeded: the old folder is renamed aside, the staging
  folder renamed into place, the old one deleted. So with `overwrite` no
  stale file of an earlier run survives beside the new ones, and a failure
  (bad input found half-way, Ctrl-C) removes the staging folder and leaves
  the old results as they were. A killed process (SIGKILL) can leave a
  hidden staging folder; it is never mistaken for a result.

The cost: while writing, the disk holds the old and the new output.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator

__all__ = ["OutputError", "check_target", "replaced_dir"]


class OutputError(ValueError):
    """A refused output folder; the message is one line naming it."""


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_target(path: str, *, overwrite: bool, inputs: Iterable[str] = (),
                 flag: str = "--output_dir") -> None:
    """Raises OutputError when `path` may not be (re)written (see the module doc).

    Args:
        path: the target folder.
        overwrite: whether a non-empty target may be replaced.
        inputs: paths the command reads; none may lie inside the target.
        flag: the flag that named the target, for the message.
    """
    if not path:
        raise OutputError(f"{flag} is required")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{flag} exists and is not a folder: {path!r}")
    real = os.path.realpath(path)
    for item in inputs:
        if item and _inside(os.path.realpath(item), real):
            raise OutputError(f"{flag} {path!r} holds the input {item!r}: writing there would "
                              "delete it; choose another folder")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f"{flag} {path!r} is not empty (pass --overwrite to replace it)")


def _staging_dir(real: str) -> str:
    parent, name = os.path.split(real)
    os.makedirs(parent, exist_ok=True)
    while True:  # mkdir, not mkdtemp: the folder gets the usual (umask) permissions
        staging = os.path.join(parent, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(staging)
            return staging
        except FileExistsError:
            continue


def _swap_in(staging: str, real: str) -> None:
    old = None
    if os.path.isdir(real):
        old = f"{staging}.old"
        os.rename(real, old)
    try:
        os.rename(staging, real)
    except BaseException:
        if old is not None:
            os.rename(old, real)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replaced_dir(path: str, *, overwrite: bool, inputs: Iterable[str] = (),
                 flag: str = "--output_dir") -> Iterator[str]:
    """Checks the target, yields a staging folder, and swaps it in on success.

    Usage:
        with outputs.replaced_dir(out, overwrite=flag_value, inputs=[...]) as staging:
            write_everything_into(staging)

    On any exception inside the block the staging folder is removed and
    the target is left as it was.
    """
    check_target(path, overwrite=overwrite, inputs=inputs, flag=flag)
    real = os.path.realpath(path)
    staging = _staging_dir(real)
    try:
        yield staging
        _swap_in(staging, real)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
