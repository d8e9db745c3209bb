"""The converted data folder: `manifest.json` beside its TFRecord shards.

`alm-convert` and `alm-merge` write such a folder (`alm_tf.data.writing`),
training, evaluation and the input pipeline read it. This module holds its
file names and reads it: the manifest (checked by
`alm_tf.data.validation.check_manifest` before any record is read), a
split's entry and the paths of a split's shards.

Manifest layout: `dataset`, `attributes` (names, length M),
`num_attributes`, `splits` (name -> `num_examples`, `shards` (file names
relative to the folder), `positive_ratio` (length M, over the known
labels), `num_unknown` (length M), `num_skipped`, `skipped_by_reason`,
`skipped` (rows with source, image, reason, detail)), `num_skipped`,
`fingerprint` (`alm_tf.data.fingerprint`); a merged data set adds
`sources` (see `alm_tf.data.merge`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from alm_tf.data import validation

#: The manifest's file name; a folder without it is not a finished conversion.
MANIFEST = "manifest.json"
#: The manifest entry of a merged data set (`alm_tf.data.merge`) that lists
#: its source data sets: [{"name": ..., ...}, ...].
SOURCES_KEY = "sources"
#: A shard's file name (`shard_name`); group `split` is its split.
SHARD_PATTERN = re.compile(r"^(?P<split>.+)-\d{5}-of-\d{5}\.tfrecord$")

__all__ = ["MANIFEST", "SHARD_PATTERN", "SOURCES_KEY", "manifest_sources", "read_manifest", "shard_files",
           "shard_name", "split_info"]


def shard_name(split: str, index: int, num_shards: int) -> str:
    """`split-00000-of-000NN.tfrecord`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def read_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The `manifest.json` of `data_dir` as a dict (layout: the module docstring).

    Raises:
        FileNotFoundError: no manifest (no finished conversion) in data_dir.
        ValueError: the manifest is not valid JSON, lacks required keys, or
            has an entry that cannot be right (`validation.check_manifest`:
            checked before any record is read).
    """
    path = os.path.join(os.fspath(data_dir), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {MANIFEST} in {os.fspath(data_dir)!r}: run alm-convert first")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is not a manifest (a JSON object)")
    for key in ("dataset", "attributes", "splits"):
        if key not in manifest:
            raise ValueError(f"{path} has no {key!r} entry")
    validation.check_manifest(manifest, path, os.fspath(data_dir))
    return manifest


def split_info(manifest: dict[str, Any], split: str) -> dict[str, Any] | None:
    """The manifest entry of a split (under `splits`, or at the top level, which some manifests use), or None."""
    for holder in (manifest.get("splits", {}), manifest):
        entry = holder.get(split)
        if isinstance(entry, dict) and "num_examples" in entry:
            return entry
    return None


def manifest_sources(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The source data set names of a merged data set (empty for any other)."""
    return tuple(source["name"] for source in manifest.get(SOURCES_KEY) or ())


def shard_files(data_dir: str, manifest: dict[str, Any], split: str) -> list[str]:
    """The paths of the shards of `split`, in the manifest's order (empty for a split of no examples).

    Raises:
        ValueError: `split` is not in the manifest (naming the splits it has).
    """
    splits = manifest["splits"]
    if split not in splits:
        raise ValueError(f"split {split!r} is not in {data_dir} (available: {', '.join(splits)})")
    return [os.path.join(data_dir, name) for name in splits[split]["shards"]]
