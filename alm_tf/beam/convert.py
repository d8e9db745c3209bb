"""`alm_tf.data.convert` as a Beam pipeline: the same checks, shards and manifest.

The launcher runs the cheap pass (`plan_conversion`: paths, labels,
duplicates, the planned shards), as the local conversion does. The
pipeline then decodes every row on the workers (`convert_item`, the local
conversion's own per-row code), and writes each shard on one worker: an
example goes to shard `rank % num_shards`, its rank being its place among
the written examples of its split in source order, the local conversion's
round-robin rule; inside a shard the examples keep the source order. So
the shards hold the same bytes as the local conversion's, and the
manifest (counts, positive ratios, unknown counts, skipped rows, the
data's fingerprint) is built and published by the same functions.

The row list is built in the launcher and the worker results come back
through a summary file, so the output folder must be on a file system the
launcher and the workers share (a local folder with the DirectRunner).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

from alm_tf.beam import options as options_lib
from alm_tf.data import convert as convert_lib
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.data import validation, writing
from alm_tf.data.labels import LabelCounts
from alm_tf.data.manifest import MANIFEST

_SUMMARY = "summary.json"

__all__ = ["convert"]


def _convert_row(numbered, images_dir: str, max_pixels: int):
    """Worker: (seq, split, serialized example or None, (reason, detail) or None)."""
    seq, item = numbered
    record = convert_lib.convert_item(images_dir, item, max_pixels)
    if isinstance(record, validation.Problem):
        return seq, item.split, None, (record.reason, record.detail)
    return seq, item.split, record, None


def _ranks(outcomes: list) -> dict:
    """(split, seq) of every written example -> its rank in its split."""
    by_split: dict[str, list[int]] = collections.defaultdict(list)
    for seq, split, ok in outcomes:
        if ok:
            by_split[split].append(seq)
    return {(split, seq): rank for split, seqs in by_split.items() for rank, seq in enumerate(sorted(seqs))}


def _to_shard(result, ranks: dict, num_shards: dict):
    seq, split, record, _ = result
    return (split, ranks[(split, seq)] % num_shards[split]), (seq, record)


def _write_shard(keyed, out: str, shards: dict):
    import tensorflow as tf

    (split, index), records = keyed
    with tf.io.TFRecordWriter(writing.tmp_path(out, shards[split][index])) as writer:
        for _, record in sorted(records, key=lambda r: r[0]):
            writer.write(record)


def _write_summary(outcomes, path: str):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sorted(outcomes), f)


def _run_pipeline(numbered: list, cfg, shards: dict, work_dir: str, pipeline_args: Sequence[str]) -> None:
    import apache_beam as beam

    options = options_lib.pipeline_options(pipeline_args)
    num_shards = {s: len(names) for s, names in shards.items()}
    with options_lib.pipeline(options) as p:
        results = (p | "Rows" >> beam.Create(numbered) | "Spread" >> beam.Reshuffle()
                   | "Decode" >> beam.Map(_convert_row, cfg.images_dir, cfg.max_image_pixels))
        outcomes = (results | "Outcome" >> beam.Map(lambda r: (r[0], r[1], r[3]))
                    | "AllOutcomes" >> beam.combiners.ToList())
        _ = outcomes | "Summary" >> beam.Map(_write_summary, os.path.join(work_dir, _SUMMARY))
        ranks = outcomes | "Ranks" >> beam.Map(lambda o: _ranks([(s, sp, pr is None) for s, sp, pr in o]))
        _ = (results | "Written" >> beam.Filter(lambda r: r[2] is not None)
             | "ToShard" >> beam.Map(_to_shard, beam.pvalue.AsSingleton(ranks), num_shards)
             | "ByShard" >> beam.GroupByKey()
             | "WriteShard" >> beam.Map(_write_shard, cfg.output_dir, shards))


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
        _run_pipeline(list(enumerate(items)), cfg, shards, work_dir, pipeline_args)
        with open(os.path.join(work_dir, _SUMMARY), encoding="utf-8") as f:
            outcomes = json.load(f)
        manifest = _manifest(plan, cfg, items, outcomes, shards)
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
