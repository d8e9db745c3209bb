"""What the reliability tests compare on disk, and a pid no process holds."""

from __future__ import annotations

import os


def snapshot(folder: str) -> dict[str, bytes]:
    """The bytes of every file below `folder`, by relative path (to check that nothing changed)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def dead_pid() -> int:
    """The pid of a child that has exited (what a killed run's staging names)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
