"""tf.data input pipeline over a converted data folder's shards.

Stages: list the split's shards (`alm_tf.data.manifest`) and check them
against the manifest (`alm_tf.data.records`) -> split them among the
tf.distribute input pipelines -> read (interleave, shuffle in training) ->
decode and resize to the model size, flip at random in training, normalize
(`alm_tf.data.parser`; the pixel rules are `alm_tf.preprocessing.pixels`,
shared with serving) -> batch -> prefetch, AUTOTUNE throughout. With a seed
the order and the flips are deterministic.

Nothing is dropped silently: before the pipeline is built, every shard of
the split is counted against the manifest (once per run and split), and a
missing, truncated or corrupt shard or a record that does not fit the
manifest fails with one line naming the shard and the counts. With
`allow_corrupt_records=True` such records (and images that do not decode)
are skipped with a logged warning instead; without it, a record that still
fails while the pipeline runs (an image that does not decode) raises, and
the consumers (`alm_tf.training`, `alm_tf.evaluation.report`) turn that
into a `records.RecordReadError` line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf

from alm_tf.data import parser, records
from alm_tf.data.manifest import read_manifest, shard_files
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 2048

__all__ = ["DEFAULT_SHUFFLE_BUFFER", "make_dataset"]


def make_dataset(
    data_dir: str | os.PathLike,
    split: str,
    *,
    batch_size: int,
    image_size: Sequence[int] = (256, 128),
    training: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    drop_remainder: bool | None = None,
    repeat: bool = False,
    normalize: bool = True,
    with_sources: bool = False,
    allow_corrupt_records: bool = False,
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION,
) -> tf.data.Dataset:
    """Batches of (images float32 (B, H, W, 3) normalized, labels float32 (B, M)).

    Labels are 0., 1. or -1. (unknown, `labels.UNKNOWN`); the loss and the
    metrics skip the unknown ones.

    Args:
        data_dir: the converter's output folder.
        split: a split of its manifest.
        batch_size: the global batch size; with an `input_context` each
            pipeline batches `input_context.get_per_replica_batch_size(batch_size)`.
        image_size: (H, W) the model takes.
        training: shuffle files and examples and flip at random.
        input_context: tf.distribute input context; shard files by
            `input_pipeline_id` out of `num_input_pipelines` (records when
            there are fewer files than pipelines).
        seed: makes order and flips deterministic (with `training`).
        shuffle_buffer: examples in the shuffle buffer (training).
        drop_remainder: drop a last smaller batch; default: `training`.
        repeat: repeat forever.
        normalize: ImageNet-normalize the images (what `build_model`
            takes); False keeps RGB 0..255 at the model size (what a
            loaded model's `predict` and every export take).
        with_sources: add a third element, the `image/source` of each
            record (tf.string (B,); empty for records without one), which a
            merged data set (`alm_tf.data.merge`) writes.
        allow_corrupt_records: skip missing, corrupt or ill-fitting records
            and undecodable images (logged) instead of failing; see the
            module docstring.
        exif_orientation: the model's `ModelConfig.exif_orientation`
            (`alm_tf.preprocessing.image_input`).

    Returns:
        The tf.data.Dataset.

    Raises:
        records.CorruptRecordsError: the split's shards do not hold what
            the manifest says (unless `allow_corrupt_records`).
    """
    data_dir = os.fspath(data_dir)
    height, width = preprocessing.height_width(image_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1. Received: shuffle_buffer={shuffle_buffer}")
    manifest = read_manifest(data_dir)
    files = _checked_files(data_dir, manifest, split, allow_corrupt_records)
    drop_remainder = training if drop_remainder is None else drop_remainder
    deterministic = seed is not None or not training
    shard_records = None
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        files, shard_records = _split_among_pipelines(files, input_context)

    ds = _read(files, shard_records, training=training, seed=seed, shuffle_buffer=shuffle_buffer, repeat=repeat,
               skip_bad=allow_corrupt_records, deterministic=deterministic)
    ds = parser.decode(ds, len(manifest["attributes"]), height, width, with_sources=with_sources,
                       exif_orientation=exif_orientation, skip_bad=allow_corrupt_records,
                       deterministic=deterministic)
    if training:
        ds = parser.random_flips(ds, seed)
    if normalize:
        ds = parser.normalize(ds, deterministic)
    return _batched(ds, batch_size, drop_remainder, deterministic, sharded=input_context is not None)


def _checked_files(data_dir: str, manifest: dict, split: str, allow_corrupt: bool) -> list[str]:
    """The split's shard paths, after the records check (`records.check_split`).

    Raises:
        ValueError: an unknown split, or a split without examples.
        records.CorruptRecordsError: see `records.check_split`.
    """
    files = shard_files(data_dir, manifest, split)
    if not files:
        raise ValueError(f"split {split!r} of {data_dir} has no examples")
    records.check_split(data_dir, split, manifest, allow_corrupt=allow_corrupt)
    if allow_corrupt:  # a missing file would make ignore_errors() retry forever
        files = [f for f in files if os.path.isfile(f)]
    return files


def _split_among_pipelines(files: list[str], input_context: tf.distribute.InputContext,
                           ) -> tuple[list[str], tuple[int, int] | None]:
    """This input pipeline's files, or all files and the (count, index) to shard records by
    when there are fewer files than pipelines."""
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= n:
        return files[i::n], None
    return files, ((n, i) if n > 1 else None)


def _batched(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool, deterministic: bool, *,
             sharded: bool) -> tf.data.Dataset:
    """Batches, prefetches; `sharded`: split among the input pipelines here already (no auto-shard)."""
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    if sharded:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def _read(files: list[str], shard_records: tuple[int, int] | None, *, training: bool, seed: int | None,
          shuffle_buffer: int, repeat: bool, skip_bad: bool, deterministic: bool) -> tf.data.Dataset:
    """The serialized records of `files`: interleaved, shuffled in training, repeated on request."""
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read(f: tf.Tensor) -> tf.data.Dataset:
        shard = tf.data.TFRecordDataset(f)
        return shard.ignore_errors(log_warning=True) if skip_bad else shard

    ds = ds.interleave(
        read,
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if shard_records is not None:
        ds = ds.shard(*shard_records)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds
