"""One writer per model dir: a lock file that names its holder.

`held(model_dir)` creates `model_dir/LOCK_NAME` holding {"pid", "host"} and
keeps an exclusive `fcntl.flock` on it for as long as the run lasts; at
exit (normal, exception, or a signal Python turns into one) the file is
removed. The kernel drops the flock when its process dies, even by
SIGKILL, so a lock file whose flock is free was left by a dead run:

- on this host, with a pid that no longer runs (or an empty file: a run
  killed while writing it): taken over, with one line saying so;
- on this host with a pid that still runs, or on another host (whose
  processes cannot be seen from here, and over a network file system a
  flock may not reach them): refused, one line naming the holder; the
  user removes the file once that run is known to be over.

A lock whose flock is held is always refused, naming the holder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator

from alm_tf import outputs

LOCK_NAME = ".alm-train.lock"

__all__ = ["LOCK_NAME", "LockedError", "held"]


class LockedError(ValueError):
    """Another run holds the model dir (one line naming it)."""


def _holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        holder = {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"


def _refused(path: str, holder: dict, why: str) -> LockedError:
    return LockedError(f"model_dir {os.path.dirname(path)} is in use by another alm-train ({_describe(holder)}"
                       f"{why}); wait for it to end, or remove {path} if that run is known to be over")


def _open_locked(path: str) -> int:
    """An fd of the lock file with the flock held (retried when the file was replaced meanwhile)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise _refused(path, holder, "") from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its holder removed it as we opened it: try the new one


def _take(fd: int, path: str, say: Callable[[str], None]) -> None:
    """Checks what a free lock file says, then writes this process into it."""
    holder, host = _holder(fd), socket.gethostname()
    if holder.get("host") not in (None, host):
        raise _refused(path, holder, ", another host")
    pid = holder.get("pid")
    if isinstance(pid, int) and outputs.process_alive(pid):
        raise _refused(path, holder, ", still running")
    if holder or os.fstat(fd).st_size:
        say(f"model_dir {os.path.dirname(path)}: taking over the stale lock of {_describe(holder)} "
            "(that process is gone)")
    record = json.dumps({"pid": os.getpid(), "host": host}).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, record + b"\n")
    os.fsync(fd)


@contextlib.contextmanager
def held(model_dir: str, say: Callable[[str], None] = print) -> Iterator[str]:
    """Holds the lock of `model_dir` (created if missing) for the `with` block.

    Yields:
        The lock file's path.

    Raises:
        LockedError: another run holds it, or a lock from another host or
            of a running process is there.
    """
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_NAME)
    fd = _open_locked(path)
    try:
        _take(fd, path, say)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.remove(path)
        os.close(fd)
