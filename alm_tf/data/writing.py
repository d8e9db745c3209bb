"""Writing a converted data folder, shared by `alm-convert` and `alm-merge`.

The shard plan (how many shards a split gets, their names), the temporary
names shards and manifest are written under, and `publish`, which renames
them when complete, manifest last: a folder without `manifest.json` is not
a finished conversion, and an aborted run leaves only temporary files,
removed by the next run (`prepare_output`). Names: `alm_tf.data.manifest`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from alm_tf.data import fingerprint
from alm_tf.data.manifest import MANIFEST, SHARD_PATTERN, shard_name

DEFAULT_EXAMPLES_PER_SHARD = 1024
_TMP_SUFFIX = ".tmp"
#: The most shards a split may have (five digits in `<split>-NNNNN-of-NNNNN`).
MAX_SHARDS = 99_999

__all__ = ["DEFAULT_EXAMPLES_PER_SHARD", "MAX_SHARDS", "check_shard_options", "plan_shards", "prepare_output", "progress",
           "publish", "remove_quietly", "remove_tmp_shards", "tmp_path"]


def check_shard_options(num_shards: int | None, examples_per_shard: int | None) -> None:
    """Raises ValueError for a bad --num_shards / --examples_per_shard pair."""
    if num_shards is not None and examples_per_shard is not None:
        raise ValueError("set only one of --num_shards and --examples_per_shard")
    if num_shards is not None and not 1 <= num_shards <= MAX_SHARDS:
        raise ValueError(f"--num_shards must be in 1..{MAX_SHARDS}; got {num_shards}")
    if examples_per_shard is not None and examples_per_shard < 1:
        raise ValueError(f"--examples_per_shard must be >= 1; got {examples_per_shard}")


def plan_shards(split: str, count: int, num_shards: int | None, examples_per_shard: int | None) -> list[str]:
    """The shard file names of a split of `count` examples (none for 0)."""
    if count == 0:
        return []
    if num_shards is not None:
        n = min(num_shards, count)
    else:
        n = max(1, math.ceil(count / (examples_per_shard or DEFAULT_EXAMPLES_PER_SHARD)))
    return [shard_name(split, i, n) for i in range(n)]


def progress(total: int, enabled: bool, desc: str):
    """A tqdm bar on stderr counting images (disabled: shows nothing)."""
    return tqdm(total=total, unit="img", desc=desc, disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def remove_quietly(path: str) -> None:
    """Removes a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def prepare_output(out: str) -> None:
    """Creates the output folder and removes temporary files of an aborted run."""
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(glob.escape(out), "*" + _TMP_SUFFIX)):
        remove_quietly(stale)


def tmp_path(out: str, name: str) -> str:
    """Where a shard or the manifest is written before its rename."""
    return os.path.join(out, name + _TMP_SUFFIX)


def remove_tmp_shards(out: str, shards: Mapping[str, Sequence[str]]) -> None:
    """Removes the temporary files of the planned shards (a run that failed)."""
    for names in shards.values():
        for name in names:
            remove_quietly(tmp_path(out, name))


def publish(out: str, shards: Mapping[str, Sequence[str]], manifest: dict[str, Any]) -> None:
    """Renames the written temporary shards, removes older shards of the same
    splits, adds the data's fingerprint to `manifest` (`alm_tf.data.fingerprint`:
    the shards are hashed once, here) and writes it last (under a temporary
    name, renamed)."""
    remove_quietly(os.path.join(out, MANIFEST))
    for names in shards.values():
        for name in names:
            os.replace(tmp_path(out, name), os.path.join(out, name))
    keep = {n for names in shards.values() for n in names}
    for path in sorted(os.listdir(out)):
        match = SHARD_PATTERN.match(path)
        if match and match.group("split") in shards and path not in keep:
            remove_quietly(os.path.join(out, path))
    fingerprint.add_to_manifest(manifest, out)
    tmp_manifest = tmp_path(out, MANIFEST)
    with open(tmp_manifest, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp_manifest, os.path.join(out, MANIFEST))
