"""The one rule for what a binary writes (a folder: alm-convert, alm-merge,
alm-synth, alm-synth-frames, alm-evaluate, alm-predict, alm-export's
version folder; a file: alm-import-torch; alm-train's model dir).

- A target that contains one of the command's inputs, or lies inside one
  (files and folders, both resolved through symlinks), is refused even
  with `overwrite`: writing there would delete or mix with what is read.
- A target folder that exists and is not empty is refused, one line naming
  it, unless `overwrite`; a target that is a file is always refused.
- Everything is written into a fresh staging folder beside the target
  (`.<name>.tmp-<pid>-<random>`, same file system) and swapped in only
  when the command succeeded. On Linux the swap is one atomic exchange of
  the two names (`renameat2(RENAME_EXCHANGE)`), so a kill at any moment
  leaves the old or the new output under the target name; the old output,
  now under the staging name, is then deleted. Where the exchange is not
  available the old folder is renamed aside (`<staging>.old`) first; a kill
  between the two renames leaves no target, and the next command writing
  there renames the old folder back.
- Every command writing a target first removes the staging folders beside
  it that dead processes left (the pid in the name tells; a live
  process's are kept), saying so in one line. A failure (bad input found
  half-way, Ctrl-C, a full disk) removes the staging folder and leaves the
  old results as they were.
- `remove_stale_temporaries` does the same for a model dir's checkpoint
  temporaries (`checkpoints/ckpt-N_temp/`, `.tmp-<pid>-*.keras`).

The cost: while writing, the disk holds the old and the new output.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Optional

__all__ = ["OVERWRITE_HELP", "OutputError", "check_apart", "check_target", "process_alive", "recover_staging",
           "remove_stale_temporaries", "replaced_dir", "temp_name"]

Report = Callable[[str], None]

#: The help of every writing binary's --overwrite flag.
OVERWRITE_HELP = ("Replace a non-empty --output_dir (whole: no file of the earlier output stays; "
                  "never a folder holding, or inside, an input).")

#: `.<name>.tmp-<pid>-<hex>` (staging) and `.<name>.tmp-<pid>-<hex>.old` (an old output set aside).
_STAGING = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+(?P<old>\.old)?$")
#: `.tmp-<pid>-<hex><suffix>`: a file being written under a temporary name (`temp_name`).
_TEMP_FILE = re.compile(r"^\.tmp-(?P<pid>\d+)-[0-9a-f]+(?P<suffix>\..+)?$")
#: The folder `tf.train.Checkpoint.write` fills before renaming it `ckpt-N`.
_CKPT_TEMP = re.compile(r"^ckpt-\d+_temp$")
#: An older `tempfile.mkstemp` name of a `.keras` file (no pid in it).
_LEGACY_KERAS_TEMP = re.compile(r"^\.tmp-[A-Za-z0-9_]{8}\.keras$")


class OutputError(ValueError):
    """A refused output; the message is one line naming it."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_apart(path: str, inputs: Iterable[Optional[str]], flag: str = "--output_dir") -> None:
    """Raises OutputError when `path` contains, is, or lies inside one of `inputs`.

    Paths are compared after resolving symlinks; empty inputs are ignored.
    """
    real = os.path.realpath(path)
    for item in inputs:
        if not item:
            continue
        source = os.path.realpath(item)
        if _inside(source, real):
            raise OutputError(f"{flag} {path!r} holds the input {item!r}: writing there would "
                              "delete it; choose another place")
        if _inside(real, source):
            raise OutputError(f"{flag} {path!r} lies inside the input {item!r}: no command writes "
                              "inside what it reads (it could delete it); choose another place")


def check_target(path: str, *, overwrite: bool, inputs: Iterable[Optional[str]] = (),
                 flag: str = "--output_dir") -> None:
    """Raises OutputError when the folder `path` may not be (re)written (see the module doc).

    Args:
        path: the target folder.
        overwrite: whether a non-empty target may be replaced.
        inputs: paths the command reads; none may contain or lie inside the target.
        flag: the flag that named the target, for the message.
    """
    if not path:
        raise OutputError(f"{flag} is required")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{flag} exists and is not a folder: {path!r}")
    check_apart(path, inputs, flag)
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f"{flag} {path!r} is not empty (pass --overwrite to replace it)")


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (another user's, or an unprobeable pid, counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's live process (or a pid that cannot be probed): keep
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def recover_staging(real: str, report: Report = _say) -> None:
    """Cleans up beside the target `real` after dead processes (see the module doc).

    An old output set aside (`.old`) by a process killed in the middle of
    its swap is renamed back when the target is missing; every other
    staging folder of a dead process is removed. Each action is reported
    in one line.
    """
    parent, name = os.path.split(real)
    try:
        entries = sorted(os.listdir(parent), key=lambda e: not e.endswith(".old"))  # .old first
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        match = _STAGING.match(entry)
        if not match or match["name"] != name or process_alive(int(match["pid"])):
            continue
        path = os.path.join(parent, entry)
        if match["old"] and not os.path.lexists(real):
            os.rename(path, real)
            report(f"restored {real} from {entry}, set aside by process {match['pid']} "
                   "that died during its swap")
        else:
            _remove(path)
            report(f"removed {path}, left by process {match['pid']} that is no longer running")


def temp_name(folder: str, suffix: str = "") -> str:
    """A fresh `.tmp-<pid>-<hex><suffix>` path in `folder` (not created: the
    file gets the user's umask when written; stale ones are found by pid)."""
    return os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def remove_stale_temporaries(folder: str, report: Report = _say, *, model_dir: bool = True) -> None:
    """Removes the temporaries dead runs left in `folder` (see the module doc).

    `.tmp-<pid>-*` files of dead processes; with `model_dir`, also empty
    `.tmp-XXXXXXXX.keras` files (an older name without a pid) and
    `ckpt-N_temp` folders in `folder/checkpoints`: the caller then holds the
    model dir (its lock), so no live writer owns them. Each removal is
    reported in one line.
    """
    candidates = []
    for entry in _listdir(folder):
        path = os.path.join(folder, entry)
        match = _TEMP_FILE.match(entry)
        if match and not process_alive(int(match["pid"])):
            candidates.append((path, f"left by process {match['pid']} that is no longer running"))
        elif (model_dir and _LEGACY_KERAS_TEMP.match(entry) and os.path.isfile(path)
              and os.path.getsize(path) == 0):
            candidates.append((path, "an empty temporary of an interrupted save"))
    checkpoints = os.path.join(folder, "checkpoints")
    for entry in (_listdir(checkpoints) if model_dir else ()):
        if _CKPT_TEMP.match(entry):
            candidates.append((os.path.join(checkpoints, entry), "an interrupted checkpoint write"))
    for path, why in candidates:
        _remove(path)
        report(f"removed {path}, {why}")


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _staging_dir(real: str) -> str:
    parent, name = os.path.split(real)
    while True:  # mkdir, not mkdtemp: the folder gets the usual (umask) permissions
        staging = os.path.join(parent, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(staging)
            return staging
        except FileExistsError:
            continue


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps the names `a` and `b`; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # e.g. a file system without the exchange
    raise OSError(code, os.strerror(code), b)


def _swap_in(staging: str, real: str) -> None:
    if not os.path.lexists(real):
        os.rename(staging, real)
        return
    if _exchange(staging, real):
        _remove(staging)  # it now holds the old output
        return
    old = f"{staging}.old"
    os.rename(real, old)
    try:
        os.rename(staging, real)
    except BaseException:
        os.rename(old, real)
        raise
    _remove(old)


def _make_parents(folder: str) -> list[str]:
    """`os.makedirs(folder)`; returns the folders it created, deepest first."""
    created = []
    probe = folder
    while probe and not os.path.exists(probe):
        created.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(folder, exist_ok=True)
    return created


@contextlib.contextmanager
def replaced_dir(path: str, *, overwrite: bool, inputs: Iterable[Optional[str]] = (),
                 flag: str = "--output_dir", report: Report = _say) -> Iterator[str]:
    """Checks the target, yields a staging folder, and swaps it in on success.

    Usage:
        with outputs.replaced_dir(out, overwrite=flag_value, inputs=[...]) as staging:
            write_everything_into(staging)

    First the leftovers of dead runs beside the target are cleaned up
    (`recover_staging`, each action reported through `report`). On any
    exception inside the block the staging folder is removed, and so are
    the parent folders this call created: the target is left as it was.
    """
    inputs = list(inputs)
    if path:
        recover_staging(os.path.realpath(path), report)
    check_target(path, overwrite=overwrite, inputs=inputs, flag=flag)
    real = os.path.realpath(path)
    created = _make_parents(os.path.dirname(real))
    staging = _staging_dir(real)
    done = False
    try:
        yield staging
        _swap_in(staging, real)
        done = True
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for folder in created:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
