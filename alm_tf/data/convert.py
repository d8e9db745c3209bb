"""Raw annotations + images to sharded TFRecords and `manifest.json`.

Two streaming passes over the source rows: a cheap one (paths, labels,
duplicates) that sizes the shards, and one that fully decodes each image in
a process pool (lazy input, bounded windows, so memory stays flat in the
number of images) and writes round-robin shards. With `strict`, a checking
pass runs first and any bad row raises `StrictError` before anything is
written. Shards and manifest are written under temporary names and renamed
when complete, manifest last: a directory without `manifest.json` is not a
finished conversion. The same input gives the same bytes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow as tf

from alm_tf.data import example, validation
from alm_tf.data.labels import DEFAULT_UNCERTAIN, LabelCounts, check_uncertain
from alm_tf.data.manifest import MANIFEST
from alm_tf.data.readers import FORMATS, DataFormatError, Row, Source, open_source
from alm_tf.data.readers._common import KNOWN_SPLITS
from alm_tf.data.schemas import SCHEMAS
from alm_tf.data.writing import (check_shard_options, plan_shards, prepare_output, progress, publish, remove_quietly,
                                 remove_tmp_shards, tmp_path)
from alm_tf.preprocessing import image_input

_SPLIT_NAME_RE = re.compile(r"^[A-Za-z0-9_.]+$")
_CHUNKSIZE = 8
_MAX_REPORTED_ROWS = 10_000

__all__ = [
    "ConvertConfig",
    "ConversionResult",
    "StrictError",
    "convert",
    "format_summary",
    "parse_list_annotations",
    "parse_splits",
]


class StrictError(ValueError):
    """Raised in strict mode when any source row would be skipped."""


def _check_split_name(name: str, what: str) -> str:
    if not _SPLIT_NAME_RE.match(name):
        raise ValueError(f"bad split name in {what}: {name!r} (letters, digits, _ and . only)")
    return name


def parse_list_annotations(entries: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`["trainval=train.txt", "test=test.txt"]` -> ((split, path), ...)."""
    out: dict[str, str] = {}
    for entry in entries:
        split, sep, path = entry.partition("=")
        if not sep or not split.strip() or not path.strip():
            raise ValueError(f"--annotations entry must be SPLIT=PATH, got {entry!r}")
        split = _check_split_name(split.strip(), "--annotations")
        if split in out:
            raise ValueError(f"--annotations names split {split!r} twice")
        out[split] = path.strip()
    if not out:
        raise ValueError("--annotations needs at least one SPLIT=PATH entry")
    return tuple(out.items())


def parse_splits(entries: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`["trainval=train+val", "test"]` -> (("trainval", ("train", "val")), ("test", ("test",)))."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        name, sep, parts = entry.partition("=")
        name = _check_split_name(name.strip(), "--splits")
        sources = tuple(p.strip() for p in parts.split("+")) if sep else (name,)
        if not all(sources):
            raise ValueError(f"--splits entry must be NAME or NAME=A+B, got {entry!r}")
        if name in out:
            raise ValueError(f"--splits names output split {name!r} twice")
        out[name] = sources
    return tuple(out.items())


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """Everything a conversion needs; validated on construction.

    Args:
        format: one of `readers.FORMATS`.
        annotations: annotation path; for `alm_list`, ((split, path), ...).
        images_dir: the folder image paths are relative to.
        output_dir: where shards and manifest go.
        schema: `alm_list` attribute schema (pa100k, rap, peta).
        splits: ((output split, (source splits...)), ...); empty: every
            source split under its own name.
        partition: split number 0-4 (rap, rapv2, PETA .mat).
        num_shards: shards per split; exclusive with examples_per_shard.
        examples_per_shard: target examples per shard (default 1024).
        strict: any bad row fails the conversion before writing.
        workers: decoding processes (<= 1: in this process).
        all_attributes: every attribute of the source.
        uncertain: RAP value-2 policy (`labels.UNCERTAIN_POLICIES`; default
            `ignore`: the label is unknown, -1).
        show_progress: show a tqdm progress bar on stderr.
        max_image_pixels: an image whose header claims more pixels is a bad
            row (`image_input`), refused before decoding.
    """

    format: str
    annotations: str | tuple[tuple[str, str], ...]
    images_dir: str
    output_dir: str
    schema: str | None = None
    splits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    partition: int = 0
    num_shards: int | None = None
    examples_per_shard: int | None = None
    strict: bool = False
    workers: int = 1
    all_attributes: bool = False
    uncertain: str = DEFAULT_UNCERTAIN
    show_progress: bool = True
    max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        image_input.check_max_pixels(self.max_image_pixels)
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        if self.format == "alm_list":
            if isinstance(self.annotations, str):
                raise ValueError("--annotations for alm_list must be SPLIT=PATH entries")
            if self.schema not in SCHEMAS:
                raise ValueError(f"--schema must be one of {', '.join(SCHEMAS)} for alm_list; got {self.schema!r}")
        elif not isinstance(self.annotations, str) or not self.annotations:
            raise ValueError(f"--annotations must be one path for format {self.format}; got {self.annotations!r}")
        if not self.images_dir or not os.path.isdir(self.images_dir):
            raise ValueError(f"--images_dir is not a folder: {self.images_dir!r}")
        if not self.output_dir:
            raise ValueError("--output_dir must be set")
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise ValueError(f"--output_dir exists and is not a folder: {self.output_dir!r}")
        if not 0 <= self.partition <= 4:
            raise ValueError(f"--partition must be in 0..4; got {self.partition}")
        check_shard_options(self.num_shards, self.examples_per_shard)
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0; got {self.workers}")
        try:
            check_uncertain(self.uncertain)
        except ValueError as e:
            raise ValueError(f"--{e}") from None


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What a conversion wrote: the manifest (as written) and its path."""

    manifest: dict[str, Any]
    manifest_path: str

    @property
    def num_written(self) -> int:
        return sum(s["num_examples"] for s in self.manifest["splits"].values())

    @property
    def num_skipped(self) -> int:
        return self.manifest["num_skipped"]


@dataclasses.dataclass(frozen=True)
class _Item:
    """A source row after the cheap checks."""

    split: str
    row: Row
    path: str | None
    labels: tuple[int, ...] | None
    problem: validation.Problem | None


def _split_map(source: Source, splits: Sequence[tuple[str, tuple[str, ...]]]) -> dict[str, str]:
    if not splits:
        return {s: s for s in source.splits}
    mapping: dict[str, str] = {}
    for out, parts in splits:
        for part in parts:
            if part not in source.splits:
                raise ValueError(
                    f"--splits names split {part!r}, which {source.dataset} does not have "
                    f"(available: {', '.join(source.splits)})"
                )
            if part in mapping:
                raise ValueError(f"--splits uses source split {part!r} twice")
            mapping[part] = out
    return mapping


def _cheap_checked(source: Source, split_map: Mapping[str, str], ignored: collections.Counter) -> Iterator[_Item]:
    """Rows of the selected splits with path, label and duplicate checks."""
    seen: set[str] = set()
    for row in source.iter_rows():
        split = split_map.get(row.split)
        if split is None:
            ignored[row.split] += 1
            continue
        path = validation.normalize_path(row.image)
        if isinstance(path, validation.Problem):
            yield _Item(split, row, None, None, path)
            continue
        labels = validation.parse_labels(row.labels, source.attributes)
        if isinstance(labels, validation.Problem):
            yield _Item(split, row, None, None, labels)
            continue
        if path in seen:
            yield _Item(split, row, None, None, validation.Problem(validation.DUPLICATE_IMAGE, path))
            continue
        seen.add(path)
        yield _Item(split, row, path, labels, None)


def _decode(task: tuple[str, _Item, bool, int]) -> tuple[_Item, validation.CheckedImage | validation.Problem | None]:
    """Worker: the full image check of one item (None for an already bad one)."""
    images_dir, item, keep_bytes, max_pixels = task
    if item.problem is not None:
        return item, None
    return item, validation.check_image(images_dir, item.path, keep_bytes, max_pixels)


def _decoded(items: Iterable[_Item], images_dir: str, pool: Any, workers: int,
             max_pixels: int) -> Iterator[tuple[_Item, Any]]:
    """Items with their decode results, in order, in bounded windows (at
    most three in flight, so memory does not grow with the data set).

    Worker processes do not send JPEG / PNG bytes back (see CheckedImage).
    """
    tasks = ((images_dir, item, pool is None, max_pixels) for item in items)
    if pool is None:
        yield from map(_decode, tasks)
        return
    window = _CHUNKSIZE * workers * 4
    pending: collections.deque = collections.deque()
    while batch := list(itertools.islice(tasks, window)):
        pending.append(pool.imap(_decode, batch, chunksize=_CHUNKSIZE))
        if len(pending) > 2:  # Keep the pool busy while the oldest window is written.
            yield from pending.popleft()
    while pending:
        yield from pending.popleft()


def _problem_record(item: _Item, problem: validation.Problem) -> dict[str, str]:
    return {"source": item.row.source, "image": item.row.image, "reason": problem.reason, "detail": problem.detail}


def _strict_check(items: Iterable[_Item], cfg: ConvertConfig, pool: Any, total: int) -> None:
    problems: list[dict[str, str]] = []
    with progress(total, cfg.show_progress, "checking") as bar:
        for item, result in _decoded(items, cfg.images_dir, pool, cfg.workers, cfg.max_image_pixels):
            bar.update()
            problem = item.problem or (result if isinstance(result, validation.Problem) else None)
            if problem is not None:
                problems.append(_problem_record(item, problem))
    if problems:
        raise StrictError(f"--strict: {len(problems)} bad row(s) {_problems_summary(problems)}")


def _problems_summary(problems: list[dict[str, str]]) -> str:
    """`(reason: n, ...); first: <source> <image>: <reason> (<detail>)`."""
    counts = collections.Counter(p["reason"] for p in problems)
    first = problems[0]
    return ("(" + ", ".join(f"{r}: {n}" for r, n in sorted(counts.items()))
            + f"); first: {first['source']} {first['image']!r}: {first['reason']}"
            + (f" ({first['detail']})" if first["detail"] else ""))


def convert(cfg: ConvertConfig) -> ConversionResult:
    """Runs a conversion (see the module docstring).

    Returns:
        The written manifest.

    Raises:
        readers.DataFormatError: the annotations do not have the layout, hold
            no row of the selected splits, name a split outside
            `KNOWN_SPLITS` without `cfg.splits` (csv), or no row converts.
        StrictError: `cfg.strict` and some row would be skipped.
        ValueError: a split selection names an unknown split.
    """
    annotations = dict(cfg.annotations) if cfg.format == "alm_list" else cfg.annotations
    source = open_source(
        cfg.format, annotations, schema=cfg.schema, partition=cfg.partition,
        all_attributes=cfg.all_attributes, uncertain=cfg.uncertain,
    )
    if not cfg.splits and cfg.format != "alm_list":  # alm_list's split names are typed in the command
        unknown = [s for s in source.splits if s not in KNOWN_SPLITS]
        if unknown:
            raise DataFormatError(
                f"{cfg.annotations}: split {unknown[0]!r} is not one of {', '.join(KNOWN_SPLITS)}; "
                f"to keep it, name the splits: --splits={','.join(source.splits)}")
    split_map = _split_map(source, cfg.splits)
    out_splits = list(dict.fromkeys(split_map.values()))
    ignored: collections.Counter = collections.Counter()
    planned: collections.Counter = collections.Counter()
    total = 0
    for item in _cheap_checked(source, split_map, ignored):
        total += 1
        planned[item.split] += item.problem is None
    if total == 0:
        other = f" (rows of other splits: {sum(ignored.values())})" if ignored else ""
        where = cfg.annotations if isinstance(cfg.annotations, str) else ", ".join(p for _, p in cfg.annotations)
        raise DataFormatError(f"{where}: no annotated rows to convert{other}")
    ctx = multiprocessing.get_context("fork") if cfg.workers > 1 else None
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ctx.Pool(cfg.workers)) if ctx else None
        if cfg.strict:
            _strict_check(_cheap_checked(source, split_map, collections.Counter()), cfg, pool, total)
        manifest = _write(source, split_map, out_splits, planned, ignored, total, cfg, pool)
    return ConversionResult(manifest, os.path.join(cfg.output_dir, MANIFEST))


def _write(
    source: Source,
    split_map: Mapping[str, str],
    out_splits: Sequence[str],
    planned: Mapping[str, int],
    ignored: Mapping[str, int],
    total: int,
    cfg: ConvertConfig,
    pool: Any,
) -> dict[str, Any]:
    out = cfg.output_dir
    prepare_output(out)
    remove_quietly(os.path.join(out, MANIFEST))
    shards = {s: plan_shards(s, planned[s], cfg.num_shards, cfg.examples_per_shard) for s in out_splits}
    written = collections.Counter()
    counts = {s: LabelCounts(len(source.attributes)) for s in out_splits}
    skipped: dict[str, list[dict[str, str]]] = {s: [] for s in out_splits}
    try:
        with contextlib.ExitStack() as writers_stack, progress(total, cfg.show_progress, "converting") as bar:
            writers = {
                s: [writers_stack.enter_context(tf.io.TFRecordWriter(tmp_path(out, n))) for n in shards[s]]
                for s in out_splits
            }
            items = _cheap_checked(source, split_map, collections.Counter())
            for item, result in _decoded(items, cfg.images_dir, pool, cfg.workers, cfg.max_image_pixels):
                bar.update()
                problem = item.problem or (result if isinstance(result, validation.Problem) else None)
                if problem is None:
                    encoded = validation.image_bytes(cfg.images_dir, item.path, result)
                    problem = encoded if isinstance(encoded, validation.Problem) else None
                if problem is not None or not writers[item.split]:
                    problem = problem or validation.Problem(validation.UNREADABLE_IMAGE, "no shard planned")
                    if cfg.strict:
                        raise StrictError(f"--strict: {item.row.source} {item.row.image!r}: {problem}")
                    skipped[item.split].append(_problem_record(item, problem))
                    continue
                split_writers = writers[item.split]
                split_writers[written[item.split] % len(split_writers)].write(
                    example.build_example(
                        encoded=encoded, image_format=result.image_format, filename=item.row.image,
                        height=result.height, width=result.width, attributes=item.labels,
                    )
                )
                written[item.split] += 1
                counts[item.split].add(item.labels)
        if not sum(written.values()):
            rows = [r for split_rows in skipped.values() for r in split_rows]
            raise DataFormatError(f"none of the {total} rows could be converted {_problems_summary(rows)}")
    except BaseException:
        remove_tmp_shards(out, shards)
        raise
    manifest = {
        "dataset": source.dataset,
        "format": cfg.format,
        "attributes": list(source.attributes),
        "num_attributes": len(source.attributes),
        "splits": {
            s: {
                "num_examples": written[s],
                "shards": shards[s],
                **counts[s].manifest_entries(),
                "source_splits": [k for k, v in split_map.items() if v == s],
                "num_skipped": len(skipped[s]),
                "skipped_by_reason": dict(sorted(collections.Counter(r["reason"] for r in skipped[s]).items())),
                "skipped": skipped[s][:_MAX_REPORTED_ROWS],
            }
            for s in out_splits
        },
        "num_skipped": sum(len(v) for v in skipped.values()),
        "ignored_rows_of_other_splits": dict(sorted(ignored.items())),
        "options": {"partition": cfg.partition, "all_attributes": cfg.all_attributes, "uncertain": cfg.uncertain},
    }
    publish(out, shards, manifest)
    return manifest


def format_summary(manifest: Mapping[str, Any]) -> str:
    """A plain-text table: examples, shards and skipped rows per split."""
    lines = [f"{'split':<12} {'examples':>9} {'shards':>7} {'skipped':>8}  reasons"]
    for name, s in manifest["splits"].items():
        reasons = ", ".join(f"{r}: {n}" for r, n in s["skipped_by_reason"].items()) or "-"
        lines.append(f"{name:<12} {s['num_examples']:>9} {len(s['shards']):>7} {s['num_skipped']:>8}  {reasons}")
    ignored = manifest.get("ignored_rows_of_other_splits") or {}
    if ignored:
        lines.append("rows of splits not selected: " + ", ".join(f"{k}: {v}" for k, v in ignored.items()))
    lines.append(f"{len(manifest['attributes'])} attributes; dataset {manifest['dataset']}")
    return "\n".join(lines)
