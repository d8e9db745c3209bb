"""Several converted data sets into one, through an attribute mapping.

`merge()` (what `alm-merge` runs) reads the shards of each input data set
(`alm-convert` output, or an earlier merge), rewrites each record's
`image/attributes` into the mapping's target attributes
(`alm_tf.data.mapping`: a target a source does not map is UNKNOWN, -1),
adds `image/source` (the input's name), and writes the records round-robin
into new shards. The encoded image and every other feature are copied as
they are: nothing is decoded or re-encoded.

Splits: by default an output split gathers the inputs' splits of the same
name; `splits` (`parse_splits` syntax, `trainval=train+val+trainval`)
gathers, from each input, those of the named source splits it has. Within
an output split the inputs are interleaved in proportion to their sizes
(record k of an input of n records goes at about position k/n of the
split), so that a shuffle buffer sees every source, not one source after
the other.

The manifest is the converter's (`positive_ratio` over the known labels,
`num_unknown`) plus provenance: `sources` (each input's name, folder,
data set, the splits it gave, the targets it labels and its rules),
`mapping` (name, path, sha256), `lineage` (every converted data set the
records come from, through earlier merges too).

Image size: converted data has no data-set-wide image size. Each record
keeps its image as found, with its own `image/height` and `image/width`,
and the input pipeline resizes every image to the model's size, so crops
of different sizes merge freely. A manifest MAY declare a fixed
`image_size` [H, W] (every image stored at that size); inputs that declare
different sizes are refused, and the merge declares the common size only
when every input declares it.

Refused before anything is written, with one line naming the bad value
(`MergeError`): a mapping problem (see `alm_tf.data.mapping`), two inputs
with one name, the same data set twice (directly, or inside an earlier
merge: its images would count twice), an output folder that is one of the
inputs or one of their sources (a cycle), different declared image sizes,
a split named for no input; and while copying, before any rename: an
image that two inputs both hold (the same bytes, by their sha256: a copy
of one data set in another folder would count twice; `allow_duplicates`
keeps them and the manifest's `duplicates` counts them), a
record whose label value is outside {-1, 0, 1}, whose label count differs
from its manifest, a corrupt shard, or shards that hold another number of
records than their manifest says. On any error the temporary shards are
removed and an earlier output in the folder is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import tensorflow as tf

from alm_tf.data import example, writing
from alm_tf.data.manifest import MANIFEST, SOURCES_KEY, read_manifest
from alm_tf.data.labels import LABEL_VALUES, LabelCounts
from alm_tf.data.mapping import load_mapping, rule_to_json

MERGED_FORMAT = "merged"
LINEAGE_KEY = "lineage"
IMAGE_SIZE_KEY = "image_size"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")

__all__ = ["MERGED_FORMAT", "MergeConfig", "MergeError", "MergeResult", "merge", "parse_inputs"]


class MergeError(ValueError):
    """Bad input to a merge (the message names the bad value)."""


def parse_inputs(entries: Sequence[str]) -> tuple[tuple[str | None, str], ...]:
    """`["pa100k=records/pa100k", "records/rap"]` -> (("pa100k", ...), (None, "records/rap")).

    A bare folder takes its name from its manifest's `dataset` when merged.
    """
    out = []
    for entry in entries:
        name, sep, path = entry.partition("=")
        if not sep:
            name, path = None, entry
        elif not name.strip() or not path.strip():
            raise MergeError(f"--inputs entry must be NAME=DIR or DIR, got {entry!r}")
        else:
            name = name.strip()
        if not path.strip():
            raise MergeError(f"--inputs entry must be NAME=DIR or DIR, got {entry!r}")
        out.append((name, path.strip()))
    if not out:
        raise MergeError("--inputs needs at least one data set")
    return tuple(out)


def _check_name(name: str, where: str) -> str:
    if not _NAME_RE.match(name):
        raise MergeError(f"bad data set name {name!r} in {where} (letters, digits, _ . - only)")
    return name


@dataclasses.dataclass(frozen=True)
class MergeConfig:
    """Everything a merge needs; validated on construction.

    Args:
        inputs: ((name or None, data dir), ...); the name picks the mapping
            section and becomes each record's `image/source` (None: the
            manifest's `dataset`).
        mapping: a mapping file or a shipped mapping's name (`to_pa100k`).
        output_dir: where shards and manifest go.
        splits: ((output split, (source splits...)), ...); empty: each split
            name of any input.
        num_shards: shards per split; exclusive with examples_per_shard.
        examples_per_shard: target examples per shard (default 1024).
        show_progress: show a tqdm progress bar on stderr.
        allow_duplicates: keep images that two inputs both hold (same
            bytes); by default the first such pair is refused.
    """

    inputs: tuple[tuple[str | None, str], ...]
    mapping: str
    output_dir: str
    splits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    num_shards: int | None = None
    examples_per_shard: int | None = None
    show_progress: bool = True
    allow_duplicates: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise MergeError("--inputs needs at least one data set")
        for name, data_dir in self.inputs:
            if name is not None:
                _check_name(name, "--inputs")
            if not os.path.isfile(os.path.join(data_dir, MANIFEST)):
                raise MergeError(f"--inputs: {data_dir!r} has no {MANIFEST} (not a converted data set)")
        if not self.mapping:
            raise MergeError("--mapping must be set")
        if not self.output_dir:
            raise MergeError("--output_dir must be set")
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise MergeError(f"--output_dir exists and is not a folder: {self.output_dir!r}")
        writing.check_shard_options(self.num_shards, self.examples_per_shard)


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What a merge wrote: the manifest (as written) and its path."""

    manifest: dict[str, Any]
    manifest_path: str

    @property
    def num_written(self) -> int:
        return sum(s["num_examples"] for s in self.manifest["splits"].values())


@dataclasses.dataclass
class _Input:
    name: str
    data_dir: str
    real: str
    manifest: dict[str, Any]
    relabel: Callable[[Sequence[int]], list[int]]
    parts: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # output split -> source splits

    @property
    def lineage(self) -> set[str]:
        return {self.real, *self.manifest.get(LINEAGE_KEY, [])}


def _open_inputs(cfg: MergeConfig, mapping) -> list[_Input]:

    inputs: list[_Input] = []
    for name, data_dir in cfg.inputs:
        manifest = read_manifest(data_dir)
        name = _check_name(name or str(manifest["dataset"]), f"the manifest of {data_dir}")
        for other in inputs:
            if other.name == name:
                raise MergeError(f"two inputs are named {name!r}; name them: --inputs=NAME=DIR,...")
        where = f"{name} ({data_dir})"
        relabel = mapping.bind(name, list(manifest["attributes"]), where)
        inputs.append(_Input(name, os.path.abspath(data_dir), os.path.realpath(data_dir), manifest, relabel))
    for i, a in enumerate(inputs):
        for b in inputs[i + 1:]:
            shared = sorted(a.lineage & b.lineage)
            if shared:
                raise MergeError(
                    f"inputs {a.name!r} and {b.name!r} both hold the data set in {shared[0]} "
                    "(directly or through an earlier merge): its images would count twice"
                )
    out = os.path.realpath(cfg.output_dir)
    for item in inputs:
        if out in item.lineage:
            raise MergeError(
                f"cycle: --output_dir {cfg.output_dir!r} is input {item.name!r} or one of its sources; "
                "a merge cannot write over its own input"
            )
    return inputs


def _image_size(inputs: Sequence[_Input]) -> list[int] | None:
    declared = {i.name: i.manifest.get(IMAGE_SIZE_KEY) for i in inputs if i.manifest.get(IMAGE_SIZE_KEY) is not None}
    sizes = {tuple(v) for v in declared.values()}
    if len(sizes) > 1:
        listed = ", ".join(f"{n} {'x'.join(str(x) for x in v)}" for n, v in declared.items())
        raise MergeError(f"inputs declare different image sizes ({listed}); a merged data set holds one size or none")
    if sizes and len(declared) == len(inputs):
        return list(sizes.pop())
    return None


def _plan_splits(inputs: Sequence[_Input], splits: Sequence[tuple[str, tuple[str, ...]]]) -> list[str]:
    if not splits:
        names = list(dict.fromkeys(s for i in inputs for s in i.manifest["splits"]))
        splits = [(s, (s,)) for s in names]
    used: dict[str, str] = {}
    for out, parts in splits:
        for part in parts:
            if part in used:
                raise MergeError(f"--splits uses source split {part!r} twice")
            used[part] = out
            if not any(part in i.manifest["splits"] for i in inputs):
                raise MergeError(f"--splits names split {part!r}, which no input has")
        for item in inputs:
            item.parts[out] = [p for p in parts if p in item.manifest["splits"]]
    return [out for out, _ in splits]


def _records(item: _Input, split: str) -> Iterator[tuple[str, int, bytes]]:
    """(shard, index, serialized record) of one split of an input, in order."""

    for shard in item.manifest["splits"][split]["shards"]:
        path = os.path.join(item.data_dir, shard)
        try:
            for k, raw in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                yield shard, k, raw
        except (tf.errors.OpError, OSError) as e:
            message = getattr(e, "message", str(e)).splitlines()[0]
            raise MergeError(f"cannot read {path}: {message}") from None


def _split_records(item: _Input, splits: Sequence[str]) -> Iterator[tuple[str, int, bytes]]:
    for split in splits:
        yield from _records(item, split)


def _interleaved(streams: list[tuple[_Input, int, Iterator]]) -> Iterator[tuple[_Input, Any]]:
    """Records of several streams, each spread evenly over the output."""
    heap = [((0.5 / max(n, 1)), k) for k, (_, n, _) in enumerate(streams)]
    heapq.heapify(heap)
    emitted = [0] * len(streams)
    while heap:
        _, k = heapq.heappop(heap)
        item, planned, records = streams[k]
        record = next(records, None)
        if record is None:
            continue
        yield item, record
        emitted[k] += 1
        heapq.heappush(heap, ((emitted[k] + 0.5) / max(planned, 1), k))


class _Duplicates:
    """The content hashes of the images copied so far, to find an image that
    two inputs both hold (a copy of one data set in another folder, the
    same images converted twice). Repeats inside one input are its own."""

    def __init__(self, allowed: bool):
        self.allowed = allowed
        self.count = 0
        self._first: dict[bytes, tuple[str, str]] = {}

    def see(self, name: str, where: str, encoded: bytes) -> None:
        first = self._first.setdefault(hashlib.sha256(encoded).digest(), (name, where))
        if first[0] == name:
            return
        self.count += 1
        if not self.allowed:
            raise MergeError(f"inputs {first[0]!r} and {name!r} hold the same image ({first[1]} and {where}): "
                             "it would count twice; --allow_duplicates keeps such images")


def _relabelled(item: _Input, shard: str, k: int, raw: bytes, num_source: int,
                duplicates: _Duplicates) -> tuple[bytes, list[int]]:

    where = f"input {item.name!r}, {shard} record {k}"
    try:
        ex = tf.train.Example.FromString(raw)
    except Exception:  # protobuf's DecodeError
        raise MergeError(f"{where}: not a tf.train.Example") from None
    features = ex.features.feature
    if example.ATTRIBUTES not in features or example.ENCODED not in features:
        raise MergeError(f"{where}: no {example.ATTRIBUTES} or {example.ENCODED} feature")
    encoded = features[example.ENCODED].bytes_list.value
    name = features[example.FILENAME].bytes_list.value if example.FILENAME in features else []
    shown = f" {name[0].decode('utf-8', 'replace')!r}" if name else ""
    duplicates.see(item.name, f"{item.name}'s {shard} record {k}{shown}", encoded[0] if encoded else b"")
    values = list(features[example.ATTRIBUTES].int64_list.value)
    if len(values) != num_source:
        raise MergeError(f"{where}: {len(values)} labels, its manifest names {num_source} attributes")
    for value in values:
        if value not in LABEL_VALUES:
            raise MergeError(f"{where}: label value {value} is outside {{-1, 0, 1}}")
    labels = item.relabel(values)
    attributes = features[example.ATTRIBUTES].int64_list.value
    del attributes[:]
    attributes.extend(labels)
    source = features[example.SOURCE].bytes_list.value
    del source[:]
    source.append(item.name.encode("utf-8"))
    return ex.SerializeToString(deterministic=True), labels


def merge(cfg: MergeConfig, write_to: str | None = None) -> MergeResult:
    """Runs a merge (see the module docstring).

    Args:
        cfg: the merge; its `output_dir` is what the checks (cycles) see.
        write_to: the folder the shards and manifest are written to
            (default `cfg.output_dir`); `alm-merge` passes a staging folder
            that replaces `cfg.output_dir` when the merge is complete
            (`alm_tf.outputs`).

    Raises:
        MergeError, MappingError (both ValueError): bad input; nothing written.
        OSError: the output cannot be written.
    """

    mapping = load_mapping(cfg.mapping)
    inputs = _open_inputs(cfg, mapping)
    image_size = _image_size(inputs)
    out_splits = _plan_splits(inputs, cfg.splits)
    planned = {
        s: {i.name: sum(i.manifest["splits"][p]["num_examples"] for p in i.parts[s]) for i in inputs}
        for s in out_splits
    }
    shards = {s: writing.plan_shards(s, sum(planned[s].values()), cfg.num_shards, cfg.examples_per_shard)
              for s in out_splits}
    out = write_to or cfg.output_dir
    writing.prepare_output(out)
    counts = {s: LabelCounts(len(mapping.attributes)) for s in out_splits}
    written = {s: dict.fromkeys(planned[s], 0) for s in out_splits}
    total = sum(sum(p.values()) for p in planned.values())
    duplicates = _Duplicates(cfg.allow_duplicates)
    try:
        with writing.progress(total, cfg.show_progress, "merging") as bar:
            for s in out_splits:
                if not shards[s]:
                    continue
                streams = [(i, planned[s][i.name], _split_records(i, i.parts[s])) for i in inputs if i.parts[s]]
                with contextlib.ExitStack() as stack:
                    writers = [stack.enter_context(tf.io.TFRecordWriter(writing.tmp_path(out, n))) for n in shards[s]]
                    n_written = 0
                    for item, (shard, k, raw) in _interleaved(streams):
                        record, labels = _relabelled(item, shard, k, raw, len(item.manifest["attributes"]),
                                                     duplicates)
                        writers[n_written % len(writers)].write(record)
                        n_written += 1
                        written[s][item.name] += 1
                        counts[s].add(labels)
                        bar.update()
                for name, n in written[s].items():
                    if n != planned[s][name]:
                        raise MergeError(
                            f"input {name!r}, split(s) {'+'.join(next(i for i in inputs if i.name == name).parts[s])}: "
                            f"its manifest says {planned[s][name]} records, its shards hold {n}"
                        )
    except BaseException:
        writing.remove_tmp_shards(out, shards)
        raise
    manifest = _manifest(cfg, mapping, inputs, out_splits, shards, written, counts, image_size)
    manifest["duplicates"] = {"allowed": cfg.allow_duplicates, "num_duplicate_images": duplicates.count}
    writing.publish(out, shards, manifest)
    return MergeResult(manifest, os.path.join(out, MANIFEST))


def _manifest(cfg, mapping, inputs, out_splits, shards, written, counts, image_size) -> dict[str, Any]:

    used = {(i.name, p) for i in inputs for s in out_splits for p in i.parts[s]}
    ignored = {f"{i.name}/{p}": v["num_examples"] for i in inputs for p, v in i.manifest["splits"].items()
               if (i.name, p) not in used}
    manifest: dict[str, Any] = {
        "dataset": "+".join(i.name for i in inputs),
        "format": MERGED_FORMAT,
        "attributes": list(mapping.attributes),
        "num_attributes": len(mapping.attributes),
        "splits": {
            s: {
                "num_examples": sum(written[s].values()),
                "shards": shards[s],
                **counts[s].manifest_entries(),
                "num_examples_by_source": written[s],
                "source_splits": {i.name: i.parts[s] for i in inputs if i.parts[s]},
                "num_skipped": 0,
                "skipped_by_reason": {},
                "skipped": [],
            }
            for s in out_splits
        },
        "num_skipped": 0,
        "ignored_rows_of_other_splits": dict(sorted(ignored.items())),
        SOURCES_KEY: [
            {
                "name": i.name,
                "data_dir": i.data_dir,
                "dataset": i.manifest["dataset"],
                "format": i.manifest.get("format"),
                "known_attributes": list(mapping.known_targets(i.name)),
                "rules": {t: rule_to_json(mapping.sources[i.name].get(t)) for t in mapping.attributes},
            }
            for i in inputs
        ],
        "mapping": {"name": mapping.name, "path": mapping.path, "sha256": mapping.sha256},
        LINEAGE_KEY: sorted(set().union(*(i.lineage for i in inputs))),
        "options": {"splits": {out: list(parts) for out, parts in cfg.splits}},
    }
    if image_size is not None:
        manifest[IMAGE_SIZE_KEY] = image_size
    return manifest
