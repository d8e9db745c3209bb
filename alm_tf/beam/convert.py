"""`alm_tf.data.convert` as a Beam pipeline: the same checks, shards and manifest.

The launcher runs the cheap pass (`plan_conversion`: paths, labels,
duplicates, the planned shards), as the local conversion does, and sends
the rows in chunks. The pipeline has two stages of work, both on the
workers (`alm_tf.beam.records`): the full check of every image (chunks
of rows; only the outcome and the image's size and checksum come back),
then one task per shard, which re-reads its images and writes the shard.
Between them, one step gives every written row its shard by the local
conversion's round-robin rule. So the shards hold the same bytes as the
local conversion's, and the manifest (counts, positive ratios, unknown
counts, skipped rows, the data's fingerprint) is built and published by
the same functions. An image that changes between its check and its
shard's writing fails the job (the local conversion skips such a row).

The workers import no TensorFlow; a local multi-process run starts them
with `alm_tf.DATA_ONLY_ENV` set, so that importing the package skips it.
The row list is built in the launcher and the worker results come back
through files, so the output folder must be on a file system the
launcher and the workers share (a local folder with the DirectRunner).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

import alm_tf
from alm_tf.beam import options as options_lib
from alm_tf.beam import records
from alm_tf.data import convert as convert_lib
from alm_tf.data import validation, writing
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.data.labels import LabelCounts
from alm_tf.data.manifest import MANIFEST
from alm_tf.data.readers import DataFormatError

#: Rows per work item of the image check: enough to make Beam's cost per
#: element small beside the decoding, few enough to spread over the workers.
CHUNK_ROWS = 64
_SUMMARY = "summary.json"
_WRITTEN = "written.json"

__all__ = ["CHUNK_ROWS", "convert"]


def _rows(items: list) -> Iterator[tuple]:
    """The cheap pass's items as the workers' plain row tuples (`records`)."""
    for seq, item in enumerate(items):
        problem = (item.problem.reason, item.problem.detail) if item.problem is not None else None
        yield seq, item.split, item.path, item.row.image, item.labels, problem


@contextlib.contextmanager
def _data_only_workers():
    """Worker processes started here import alm_tf without TensorFlow (they inherit the variable)."""
    before = os.environ.get(alm_tf.DATA_ONLY_ENV)
    os.environ[alm_tf.DATA_ONLY_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(alm_tf.DATA_ONLY_ENV, None)
        else:
            os.environ[alm_tf.DATA_ONLY_ENV] = before


def _run_pipeline(rows: list, cfg, shards: dict, work_dir: str, pipeline_args: Sequence[str]) -> None:
    import apache_beam as beam

    options = options_lib.pipeline_options(pipeline_args)
    chunks = [rows[k:k + CHUNK_ROWS] for k in range(0, len(rows), CHUNK_ROWS)]
    with _data_only_workers(), options_lib.pipeline(options) as p:
        _ = (p | "Rows" >> beam.Create(chunks) | "Spread" >> beam.Reshuffle()
             | "Check" >> beam.Map(records.check_chunk, cfg.images_dir, cfg.max_image_pixels)
             | "AllChecked" >> beam.combiners.ToList()
             | "ShardTasks" >> beam.FlatMap(records.shard_tasks, shards, os.path.join(work_dir, _SUMMARY))
             | "SpreadShards" >> beam.Reshuffle()
             | "WriteShard" >> beam.Map(records.write_shard, cfg.images_dir, cfg.output_dir)
             | "AllWritten" >> beam.combiners.ToList()
             | "Report" >> beam.Map(records.write_json, os.path.join(work_dir, _WRITTEN)))


def _read(work_dir: str, name: str):
    with open(os.path.join(work_dir, name), encoding="utf-8") as f:
        return json.load(f)


def convert(cfg: ConvertConfig, pipeline_args: Sequence[str] = ()) -> convert_lib.ConversionResult:
    """`alm_tf.data.convert.convert` on Beam (`pipeline_args`: Beam's options).

    Raises what the local conversion raises, and `options.BeamError` for
    bad pipeline options; `cfg.workers` and `cfg.show_progress` do not apply.
    """
    options_lib.pipeline_options(pipeline_args)  # bad options fail before the cheap pass
    plan = convert_lib.plan_conversion(cfg)
    out = cfg.output_dir
    writing.prepare_output(out)
    shards = {s: writing.plan_shards(s, plan.planned[s], cfg.num_shards, cfg.examples_per_shard)
              for s in plan.out_splits}
    items = list(plan.items())
    work_dir = tempfile.mkdtemp(prefix=".beam-", dir=out)
    try:
        _run_pipeline(list(_rows(items)), cfg, shards, work_dir, pipeline_args)
        changed = [row for shard in _read(work_dir, _WRITTEN) for row in shard]
        if changed:
            _, reason, detail = changed[0]
            raise DataFormatError(f"{reason}: {detail} (between its check and the writing of its shard)")
        manifest = _manifest(plan, cfg, items, _read(work_dir, _SUMMARY), shards)
    except BaseException:
        writing.remove_tmp_shards(out, shards)
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    writing.publish(out, shards, manifest)
    return convert_lib.ConversionResult(manifest, os.path.join(out, MANIFEST))


def _manifest(plan, cfg, items: list, outcomes: list, shards: dict) -> dict:
    """The manifest from the workers' outcomes, in source order (the local conversion's tallies)."""
    written: collections.Counter = collections.Counter()
    counts = {s: LabelCounts(len(plan.source.attributes)) for s in plan.out_splits}
    skipped: dict[str, list] = {s: [] for s in plan.out_splits}
    problems = []
    for seq, split, problem in outcomes:
        item = items[seq]
        if problem is not None:
            record = convert_lib.problem_record(item, validation.Problem(*problem))
            skipped[split].append(record)
            problems.append(record)
            continue
        written[split] += 1
        counts[split].add(item.labels)
    if cfg.strict and problems:
        raise convert_lib.strict_error(problems)
    convert_lib.check_converted(plan.total, written, skipped)
    for split, names in shards.items():  # a shard whose every row failed to decode: empty, as locally
        for name in names:
            path = writing.tmp_path(cfg.output_dir, name)
            if not os.path.exists(path):
                open(path, "wb").close()
    return convert_lib.build_manifest(plan.source, cfg, plan.split_map, plan.out_splits, plan.ignored,
                                      shards, written, counts, skipped)
