"""What the shards of a split really hold, against what the manifest says.

`check_split` reads every shard of a split once (a tf.data pass in C++:
read, CRC check, parse of the label list and the image bytes' presence; no
image decoding) and compares the count of usable records with the
manifest's `num_examples`. Shards that hold MORE usable records than the
manifest counts are not corrupt records but shards of another conversion:
refused even with `allow_corrupt=True`. A shard that is missing, truncated or corrupt,
a record with another number of labels than the manifest's attributes (or
a value outside {-1, 0, 1}, or no image), or shards that hold another
number of records than the manifest says, a shard whose size is not the
one the manifest's fingerprint records: by default a
`CorruptRecordsError`, one line naming the shard and the counts; with
`allow_corrupt=True` a logged warning and a `SplitRecords` that says what
is usable (the input pipeline then skips the bad records).

The result is cached per process, keyed by the shards' paths, sizes and
modification times, so a trainer that builds its input pipeline every
epoch (and every replica) reads the shards once per run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any

import tensorflow as tf

from alm_tf.data import example, fingerprint
from alm_tf.data.labels import LABEL_VALUES
from alm_tf.data.manifest import MANIFEST, shard_files

__all__ = ["CorruptRecordsError", "RecordReadError", "SplitRecords", "check_split", "clear_cache",
           "read_error", "tf_error_line"]

ALLOW_HINT = "--allow_corrupt_records goes on without them"
_BATCH = 256
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\].*$")
_CACHE: dict[tuple, "SplitRecords"] = {}


class CorruptRecordsError(ValueError):
    """Shards that do not hold what their manifest says (one line)."""


class RecordReadError(ValueError):
    """A record that failed while a data set was read (one line, no TF internals)."""


def tf_error_line(error: BaseException) -> str:
    """A TensorFlow error as one line without `{{function_node ...}}` or `[Op:...]`."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [_OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", line)).strip() for line in text.splitlines()]
    return next((line for line in lines if line), type(error).__name__)


def read_error(error: BaseException, data_dir: str, split: str) -> RecordReadError:
    """The one-line error for a record that failed while `split` was read."""
    return RecordReadError(f"a record of split {split!r} of {data_dir} cannot be read: "
                           f"{tf_error_line(error)} ({ALLOW_HINT})")


@dataclasses.dataclass(frozen=True)
class SplitRecords:
    """The usable records of a split.

    Attributes:
        split: the split's name.
        expected: `num_examples` of the manifest.
        usable: records that read and parse with M labels.
        problems: one line per bad shard (empty when every shard is fine).
    """

    split: str
    expected: int
    usable: int
    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.problems and self.usable == self.expected

    def report(self) -> dict[str, Any]:
        """JSON-ready counts (metrics.json `records`, config.json)."""
        return {"expected": self.expected, "usable": self.usable,
                "missing": self.expected - self.usable, "problems": list(self.problems)}


def clear_cache() -> None:
    _CACHE.clear()


def _count_fast(files: list[str], num_attributes: int) -> tuple[list[int], list[int]]:
    """(records, bad records) per shard, in one parallel tf.data pass.

    Raises:
        tf.errors.OpError: a shard cannot be read to its end.
    """
    spec = {example.ATTRIBUTES: tf.io.VarLenFeature(tf.int64),
            example.ENCODED: tf.io.FixedLenFeature([], tf.string, default_value="")}
    low, high = min(LABEL_VALUES), max(LABEL_VALUES)
    num_files = len(files)

    def counts(index, serialized):
        parsed = tf.io.parse_example(serialized, spec)
        labels = parsed[example.ATTRIBUTES]
        n = tf.shape(serialized)[0]
        rows = tf.cast(labels.indices[:, 0], tf.int32)
        lengths = tf.math.bincount(rows, minlength=n, maxlength=n)
        out_of_set = tf.math.bincount(rows, weights=tf.cast((labels.values < low) | (labels.values > high),
                                                            tf.int32), minlength=n, maxlength=n)
        bad = (lengths != num_attributes) | (out_of_set > 0) | (tf.strings.length(parsed[example.ENCODED]) == 0)
        one_hot = tf.one_hot(index, num_files, dtype=tf.int64)
        return one_hot * tf.cast(n, tf.int64), one_hot * tf.reduce_sum(tf.cast(bad, tf.int64))

    ds = tf.data.Dataset.from_tensor_slices((tf.range(num_files), files)).interleave(
        lambda i, f: tf.data.TFRecordDataset(f, buffer_size=1 << 20).batch(_BATCH).map(
            lambda s: counts(i, s)),
        cycle_length=min(num_files, 4), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    zero = tf.zeros([num_files], tf.int64)
    total, bad = ds.reduce((zero, zero), lambda acc, x: (acc[0] + x[0], acc[1] + x[1]))
    return total.numpy().tolist(), bad.numpy().tolist()


def _record_problem(raw: bytes, num_attributes: int) -> str | None:
    try:
        features = tf.train.Example.FromString(raw).features.feature
    except Exception:  # noqa: BLE001  protobuf's DecodeError
        return "is not a tf.train.Example"
    labels = list(features[example.ATTRIBUTES].int64_list.value) if example.ATTRIBUTES in features else []
    if len(labels) != num_attributes:
        return f"has {len(labels)} labels where {MANIFEST} names {num_attributes} attributes"
    bad = [v for v in labels if v not in LABEL_VALUES]
    if bad:
        return f"has label value {bad[0]} (allowed: -1, 0, 1)"
    if example.ENCODED not in features or not features[example.ENCODED].bytes_list.value or \
            not features[example.ENCODED].bytes_list.value[0]:
        return "has no image bytes"
    return None


def _inspect(path: str, num_attributes: int) -> tuple[int, str | None]:
    """(usable records, one-line problem or None) of a shard, record by record."""
    name = os.path.basename(path)
    usable, read, bad, first = 0, 0, 0, None
    try:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            problem = _record_problem(raw, num_attributes)
            if problem is None:
                usable += 1
            else:
                bad += 1
                first = first or f"record {read} {problem}"
            read += 1
    except tf.errors.OpError as e:
        where = f"{name} is corrupt after {read} record{'s' if read != 1 else ''} ({tf_error_line(e)})"
        if bad:
            where += f" and {bad} of those are bad (first: {first})"
        return usable, where
    return usable, (f"{name}: {bad} of its {read} records are bad (first: {first})" if bad else None)


def _key(data_dir: str, split: str, files: list[str], num_attributes: int, expected: int) -> tuple:
    stats = []
    for path in files:
        try:
            st = os.stat(path)
            stats.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((path, None, None))
    return (os.path.realpath(data_dir), split, num_attributes, expected, tuple(stats))


def _check(data_dir: str, split: str, files: list[str], num_attributes: int, expected: int,
           sizes: dict[str, int]) -> SplitRecords:
    missing = [path for path in files if not os.path.isfile(path)]
    present = [path for path in files if path not in missing]
    try:
        totals, bads = _count_fast(present, num_attributes) if present else ([], [])
    except tf.errors.OpError:  # a shard that cannot be read to its end: find it below
        totals, bads = [None] * len(present), [None] * len(present)
    found = dict(zip(present, zip(totals, bads)))
    usable, counts, problems = 0, [], []
    for path in files:
        name = os.path.basename(path)
        if path in missing:
            problems.append(f"{name} is missing")
            counts.append(f"{name}: missing")
            continue
        total, bad = found[path]
        problem = None
        if total is None or bad:
            total, problem = _inspect(path, num_attributes)
        recorded, size = sizes.get(name), os.path.getsize(path)
        if problem is None and recorded is not None and size != recorded:
            problem = f"{name} is {size} bytes where {MANIFEST} records {recorded} (changed since its conversion)"
        if problem:
            problems.append(problem)
        usable += total
        counts.append(f"{name}: {total}")
    if not problems and usable != expected:
        problems.append(f"its shards hold {usable} records ({', '.join(counts)})")
    return SplitRecords(split, expected, usable, tuple(problems))


def check_split(data_dir: str, split: str, manifest: dict[str, Any], *,
                allow_corrupt: bool = False) -> SplitRecords:
    """Counts the usable records of `split` against the manifest (see the module doc).

    Raises:
        CorruptRecordsError: bad or missing records (unless `allow_corrupt`),
            or no usable record at all.
    """
    data_dir = os.fspath(data_dir)
    num_attributes = len(manifest["attributes"])
    expected = int(manifest["splits"][split]["num_examples"])
    files = shard_files(data_dir, manifest, split)
    sizes = fingerprint.shard_sizes(manifest)
    key = _key(data_dir, split, files, num_attributes, expected) + (tuple(sorted(sizes.items())),)
    result = _CACHE.get(key)
    first_time = result is None
    if first_time:
        result = _CACHE[key] = _check(data_dir, split, files, num_attributes, expected, sizes)
    if result.complete:
        return result
    if result.usable > expected:  # not corrupt records: shards of another conversion
        raise CorruptRecordsError(
            f"split {split!r} of {data_dir}: its shards hold {result.usable} usable records, more than the "
            f"{expected} {MANIFEST} counts ({result.problems[0]}): shards and manifest are not of one "
            "conversion; convert the data again")
    summary = (f"split {split!r} of {data_dir}: {result.problems[0]}; {result.usable} of the "
               f"{expected} records {MANIFEST} counts are usable")
    if not allow_corrupt or result.usable == 0:
        more = f" (+{len(result.problems) - 1} more shard problems)" if len(result.problems) > 1 else ""
        raise CorruptRecordsError(summary + more + (f" ({ALLOW_HINT})" if result.usable else ""))
    if first_time:  # once per run, not at every epoch's input pipeline
        logging.warning("allow_corrupt_records: %s; going on with %d records", summary, result.usable)
        for problem in result.problems[1:]:
            logging.warning("allow_corrupt_records: split %r: %s", split, problem)
    return result
