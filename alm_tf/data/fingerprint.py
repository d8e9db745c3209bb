"""What a converted data set is, as a few hashes (no TensorFlow).

`alm-convert` and `alm-merge` store, once, in `manifest.json`:

    "fingerprint": {"shards": {NAME: {"size": bytes, "sha256": hex}, ...},
                    "digest": hex}

`shards` holds every shard the splits list (its name, size and the sha256
of the file); `digest` is the sha256 of the canonical JSON of the
attribute list and, per split, its `num_examples` and its shards' (name,
size, sha256) in order: two data sets with one digest hold the same
records under the same names.

A training run records the fingerprint of the splits it reads
(`of_splits`): the manifest's digest and, per split, its count and its
shards. The content hashes of a manifest that has them are taken as
stored (the shards' sizes are checked at every start by
`alm_tf.data.records`); a manifest without a fingerprint has its used
shards hashed when training starts.

`difference` names the first thing two recorded fingerprints disagree on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

KEY = "fingerprint"
_CHUNK = 1 << 20
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

__all__ = ["KEY", "add_to_manifest", "difference", "entry_problem", "file_sha256", "manifest_digest",
           "of_splits", "shard_sizes"]


def entry_problem(stored: Any, listed: Iterable[str]) -> str | None:
    """Why a manifest's `fingerprint` entry cannot be right (a shard of `listed`
    without a size and a sha256), or None."""
    if not isinstance(stored, dict) or not isinstance(stored.get("shards"), dict):
        return "is not {'shards': {...}, 'digest': ...}"
    for name, entry in stored["shards"].items():
        size = entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or \
                not _SHA256_HEX.match(str(entry.get("sha256"))):
            return f"has {entry!r} for shard {name!r} (a size and a sha256 expected)"
    missing = [name for name in listed if name not in stored["shards"]]
    return f"has no entry for shard {missing[0]!r}" if missing else None


def file_sha256(path: str) -> str:
    """The sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _shard_entry(data_dir: str, name: str) -> dict[str, Any]:
    """{"size", "sha256"} of a shard; both None for a file that cannot be read
    (the records check names it)."""
    path = os.path.join(data_dir, name)
    try:
        return {"size": os.path.getsize(path), "sha256": file_sha256(path)}
    except OSError:
        return {"size": None, "sha256": None}


def manifest_digest(manifest: Mapping[str, Any], shards: Mapping[str, Mapping[str, Any]]) -> str:
    """The digest of the attribute list, the counts and the shards' hashes."""
    canonical = {
        "attributes": list(manifest["attributes"]),
        "splits": {name: {"num_examples": entry["num_examples"],
                          "shards": [[s, shards[s]["size"], shards[s]["sha256"]] for s in entry["shards"]]}
                   for name, entry in sorted(manifest["splits"].items())},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def add_to_manifest(manifest: dict[str, Any], data_dir: str) -> dict[str, Any]:
    """`manifest` with its `fingerprint` computed from the shards in `data_dir`."""
    names = dict.fromkeys(s for entry in manifest["splits"].values() for s in entry["shards"])
    shards = {name: _shard_entry(data_dir, name) for name in names}
    manifest[KEY] = {"shards": shards, "digest": manifest_digest(manifest, shards)}
    return manifest


def shard_sizes(manifest: Mapping[str, Any]) -> dict[str, int]:
    """{shard name: size in bytes} as the manifest records them (empty without a fingerprint)."""
    stored = manifest.get(KEY)
    shards = stored.get("shards") if isinstance(stored, dict) else None
    if not isinstance(shards, dict):
        return {}
    return {name: entry["size"] for name, entry in shards.items()
            if isinstance(entry, dict) and isinstance(entry.get("size"), int)}


def _stored(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    stored = manifest.get(KEY)
    if not isinstance(stored, dict) or not isinstance(stored.get("shards"), dict):
        return {}, None
    return stored["shards"], stored.get("digest")


def of_splits(data_dir: str, manifest: Mapping[str, Any], splits: Iterable[str]) -> dict[str, Any]:
    """What a model dir records of its data: the manifest's digest (None for a
    manifest without fingerprint) and, per split, its count and shards."""
    stored, digest = _stored(manifest)
    out: dict[str, Any] = {"manifest_digest": digest, "splits": {}}
    for split in splits:
        entry = manifest["splits"][split]
        shards = []
        for name in entry["shards"]:
            known = stored.get(name)
            if not (isinstance(known, dict) and known.get("sha256")):
                known = _shard_entry(data_dir, name)
            shards.append({"name": name, "size": known.get("size"), "sha256": known["sha256"]})
        out["splits"][split] = {"num_examples": int(entry["num_examples"]), "shards": shards}
    return out


def difference(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """The first thing that differs between two `of_splits` results, or None.

    Only the splits `saved` records are compared (the digest also covers
    splits a run never reads).
    """
    for split, old in saved.get("splits", {}).items():
        new = now.get("splits", {}).get(split)
        if new is None:
            return f"split {split!r} is not read any more"
        if old.get("num_examples") != new["num_examples"]:
            return (f"split {split!r} has {new['num_examples']} examples where the run's had "
                    f"{old.get('num_examples')}")
        old_names = [s.get("name") for s in old.get("shards", [])]
        new_names = [s["name"] for s in new["shards"]]
        if old_names != new_names:
            return f"split {split!r} lists other shards ({', '.join(new_names[:3])}...)"
        for a, b in zip(old["shards"], new["shards"]):
            if a.get("sha256") != b["sha256"]:
                return (f"shard {b['name']} of split {split!r} has other content (sha256 "
                        f"{str(b['sha256'])[:12]} where the run's was {str(a.get('sha256'))[:12]})")
    return None
