"""The worker side of the Beam conversion: checking images and writing shards.

Everything a conversion worker runs lives here, and nothing here imports
TensorFlow (the example is encoded by `alm_tf.data.example`, the shard
framed by `alm_tf.data.tfrecord`): with `alm_tf.DATA_ONLY_ENV` set, a
worker process starts by importing Beam, Pillow and this module alone.
Elements are plain tuples, so decoding them imports nothing more.

A row travels as `(seq, split, path, filename, labels, problem)`: its place
in the source, its output split, its checked path, the path as annotated,
its labels, and `(reason, detail)` when the launcher's cheap pass already
refused it. Checking a row gives `(seq, split, problem, image)`, `image`
being `(format, height, width, crc32, re-encoded bytes or None)`: the
image's bytes do not travel, the shard writer re-reads the file and checks
it against its CRC-32, as the local conversion's writer does.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator, Mapping, Sequence

from alm_tf.data import example, tfrecord, validation, writing

__all__ = ["check_chunk", "shard_tasks", "write_json", "write_shard"]


def _check_row(row: tuple, images_dir: str, max_pixels: int) -> tuple:
    seq, split, path, _, _, problem = row
    if problem is not None:
        return seq, split, problem, None
    checked = validation.check_image(images_dir, path, False, max_pixels)
    if isinstance(checked, validation.Problem):
        return seq, split, (checked.reason, checked.detail), None
    return seq, split, None, (checked.image_format, checked.height, checked.width, checked.crc32, checked.encoded)


def check_chunk(rows: Sequence[tuple], images_dir: str, max_pixels: int) -> list[tuple]:
    """Worker: the full image check of a chunk of rows (see the module docstring)."""
    return [(row, _check_row(row, images_dir, max_pixels)) for row in rows]


def shard_tasks(chunks: Sequence[list], shards: Mapping[str, Sequence[str]], summary: str) -> Iterator[tuple]:
    """The checked rows (every chunk) as one task per non-empty shard; writes
    `summary`, the outcomes `[seq, split, [reason, detail] or None]` in source order.

    The local conversion's round-robin rule: a written row goes to shard
    `rank % num_shards` of its split, its rank being its place among the
    written rows of the split in source order; a shard keeps source order.
    """
    checked = sorted((result for chunk in chunks for result in chunk), key=lambda rc: rc[1][0])
    with open(summary, "w", encoding="utf-8") as f:
        json.dump([[seq, split, problem] for _, (seq, split, problem, _) in checked], f)
    rank: collections.Counter = collections.Counter()
    tasks: dict[tuple[str, int], list] = collections.defaultdict(list)
    for row, (_, split, problem, image) in checked:
        if problem is None and shards[split]:
            tasks[(split, rank[split] % len(shards[split]))].append((row, image))
            rank[split] += 1
    for (split, index), rows in sorted(tasks.items()):
        yield shards[split][index], rows


def write_shard(task: tuple, images_dir: str, out: str) -> list[list[str]]:
    """Worker: one shard under its temporary name; the rows whose file changed
    since its check (`[image, reason, detail]`), written without them."""
    name, rows = task
    changed: list[list[str]] = []

    def records() -> Iterator[bytes]:
        for (_, _, path, filename, labels, _), (fmt, height, width, crc, encoded) in rows:
            data = validation.image_bytes(images_dir, path, validation.CheckedImage(encoded, fmt, height, width, crc))
            if isinstance(data, validation.Problem):
                changed.append([filename, data.reason, data.detail])
                continue
            yield example.build_example(encoded=data, image_format=fmt, filename=filename, height=height,
                                        width=width, attributes=labels)

    tfrecord.write_records(writing.tmp_path(out, name), records())
    return changed


def write_json(value, path: str) -> None:
    """Worker: `value` as JSON in `path` (a result the launcher reads back)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)
