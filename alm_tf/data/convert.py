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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow as tf

from alm_tf.data import example, validation
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.data.labels import LabelCounts
from alm_tf.data.manifest import MANIFEST
from alm_tf.data.readers import DataFormatError, Row, Source, open_source
from alm_tf.data.readers._common import KNOWN_SPLITS
from alm_tf.data.writing import (plan_shards, prepare_output, progress, publish, remove_quietly, remove_tmp_shards,
                                 tmp_path)

_CHUNKSIZE = 8
_MAX_REPORTED_ROWS = 10_000

__all__ = [
    "ConversionPlan",
    "ConversionResult",
    "StrictError",
    "build_manifest",
    "check_converted",
    "convert",
    "convert_item",
    "format_summary",
    "plan_conversion",
    "problem_record",
    "strict_error",
]


class StrictError(ValueError):
    """Raised in strict mode when any source row would be skipped."""


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


def example_or_problem(images_dir: str, item: _Item, result: Any) -> bytes | validation.Problem:
    """One row as a serialized example, or why it is skipped (`result`: its
    `check_image` result, None for a row the cheap pass already refused)."""
    problem = item.problem or (result if isinstance(result, validation.Problem) else None)
    if problem is not None:
        return problem
    encoded = validation.image_bytes(images_dir, item.path, result)
    if isinstance(encoded, validation.Problem):
        return encoded
    return example.build_example(encoded=encoded, image_format=result.image_format, filename=item.row.image,
                                 height=result.height, width=result.width, attributes=item.labels)


def convert_item(images_dir: str, item: _Item, max_pixels: int) -> bytes | validation.Problem:
    """`example_or_problem` of a row decoded here (one work item of a distributed conversion)."""
    return example_or_problem(images_dir, item, _decode((images_dir, item, True, max_pixels))[1])


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


def problem_record(item: _Item, problem: validation.Problem) -> dict[str, str]:
    """A skipped row as the manifest lists it."""
    return {"source": item.row.source, "image": item.row.image, "reason": problem.reason, "detail": problem.detail}


def _strict_check(items: Iterable[_Item], cfg: ConvertConfig, pool: Any, total: int) -> None:
    problems: list[dict[str, str]] = []
    with progress(total, cfg.show_progress, "checking") as bar:
        for item, result in _decoded(items, cfg.images_dir, pool, cfg.workers, cfg.max_image_pixels):
            bar.update()
            problem = item.problem or (result if isinstance(result, validation.Problem) else None)
            if problem is not None:
                problems.append(problem_record(item, problem))
    if problems:
        raise strict_error(problems)


def strict_error(problems: list[dict[str, str]]) -> StrictError:
    """The --strict failure for the bad rows `problems` (manifest records, in row order)."""
    return StrictError(f"--strict: {len(problems)} bad row(s) {_problems_summary(problems)}")


def _problems_summary(problems: list[dict[str, str]]) -> str:
    """`(reason: n, ...); first: <source> <image>: <reason> (<detail>)`."""
    counts = collections.Counter(p["reason"] for p in problems)
    first = problems[0]
    return ("(" + ", ".join(f"{r}: {n}" for r, n in sorted(counts.items()))
            + f"); first: {first['source']} {first['image']!r}: {first['reason']}"
            + (f" ({first['detail']})" if first["detail"] else ""))


@dataclasses.dataclass(frozen=True)
class ConversionPlan:
    """The first, cheap pass of a conversion: the source, the split mapping
    and the planned examples per output split (before decoding)."""

    source: Source
    split_map: dict[str, str]
    out_splits: list[str]
    planned: collections.Counter
    ignored: collections.Counter
    total: int

    def items(self) -> Iterator[_Item]:
        """The source rows of the selected splits after the cheap checks, in order."""
        return _cheap_checked(self.source, self.split_map, collections.Counter())


def plan_conversion(cfg: ConvertConfig) -> ConversionPlan:
    """Opens the source and runs the cheap pass (see `convert` for the errors)."""
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
    return ConversionPlan(source, split_map, out_splits, planned, ignored, total)


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
    plan = plan_conversion(cfg)
    source, split_map, out_splits = plan.source, plan.split_map, plan.out_splits
    planned, ignored, total = plan.planned, plan.ignored, plan.total
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
                record = example_or_problem(cfg.images_dir, item, result)
                problem = record if isinstance(record, validation.Problem) else None
                if problem is not None or not writers[item.split]:
                    problem = problem or validation.Problem(validation.UNREADABLE_IMAGE, "no shard planned")
                    if cfg.strict:
                        raise StrictError(f"--strict: {item.row.source} {item.row.image!r}: {problem}")
                    skipped[item.split].append(problem_record(item, problem))
                    continue
                split_writers = writers[item.split]
                split_writers[written[item.split] % len(split_writers)].write(record)
                written[item.split] += 1
                counts[item.split].add(item.labels)
        check_converted(total, written, skipped)
    except BaseException:
        remove_tmp_shards(out, shards)
        raise
    manifest = build_manifest(source, cfg, split_map, out_splits, ignored, shards, written, counts, skipped)
    publish(out, shards, manifest)
    return manifest


def check_converted(total: int, written: Mapping[str, int], skipped: Mapping[str, list]) -> None:
    """DataFormatError when no row of `total` was written."""
    if not sum(written.values()):
        rows = [r for split_rows in skipped.values() for r in split_rows]
        raise DataFormatError(f"none of the {total} rows could be converted {_problems_summary(rows)}")


def build_manifest(source: Source, cfg: ConvertConfig, split_map: Mapping[str, str], out_splits: Sequence[str],
                   ignored: Mapping[str, int], shards: Mapping[str, list[str]], written: Mapping[str, int],
                   counts: Mapping[str, LabelCounts], skipped: Mapping[str, list]) -> dict[str, Any]:
    """The manifest (without its fingerprint, which `publish` adds) of a written conversion."""
    return {
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
