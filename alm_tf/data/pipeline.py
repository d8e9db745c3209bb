"""tf.data input pipeline over the converter's shards.

shards (split by the tf.distribute input context) -> interleave -> parse ->
decode -> resize to the model size (bilinear) -> random horizontal flip in
training -> normalize (`alm_tf.preprocessing.pixels`, shared with serving) ->
batch -> prefetch, AUTOTUNE throughout. With a seed the order and the flips
are deterministic.

Nothing is dropped silently: before the pipeline is built, every shard of
the split is counted against the manifest (`alm_tf.data.records`, once per
run and split), and a missing, truncated or corrupt shard or a record that
does not fit the manifest fails with one line naming the shard and the
counts. With `allow_corrupt_records=True` such records (and images that do
not decode) are skipped with a logged warning instead; without it, a
record that still fails while the pipeline runs (an image that does not
decode) raises, and the consumers (`alm_tf.training`, `alm_tf.evaluation.report`)
turn that into a `records.RecordReadError` line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from alm_tf.data import example, records, validation
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 2048

# The manifest entry of a merged data set (`alm_tf.data.merge`) that lists
# its source data sets: [{"name": ..., ...}, ...].
SOURCES_KEY = "sources"

__all__ = ["DEFAULT_SHUFFLE_BUFFER", "SOURCES_KEY", "make_dataset", "manifest_sources", "read_manifest",
           "split_info"]


def read_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The converter's `manifest.json` of `data_dir` as a dict.

    Layout: `dataset`, `attributes` (names, length M), `num_attributes`,
    `splits` (name -> `num_examples`, `shards` (file names relative to
    data_dir), `positive_ratio` (length M, over the known labels),
    `num_unknown` (length M), `num_skipped`, `skipped_by_reason`, `skipped`
    (rows with source, image, reason, detail)), `num_skipped`; a merged
    data set adds `sources` (see `alm_tf.data.merge`).

    Raises:
        FileNotFoundError: no manifest (no finished conversion) in data_dir.
        ValueError: the manifest is not valid JSON, lacks required keys, or
            has an entry that cannot be right (`validation.check_manifest`:
            checked before any record is read).
    """
    path = os.path.join(os.fspath(data_dir), "manifest.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no manifest.json in {os.fspath(data_dir)!r}: run alm-convert first")
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
    """The manifest entry of a split (under `splits`, or top-level in older files), or None."""
    for holder in (manifest.get("splits", {}), manifest):
        entry = holder.get(split)
        if isinstance(entry, dict) and "num_examples" in entry:
            return entry
    return None


def manifest_sources(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The source data set names of a merged data set (empty for any other)."""
    return tuple(source["name"] for source in manifest.get(SOURCES_KEY) or ())


def _shard_files(data_dir: str, manifest: dict[str, Any], split: str) -> list[str]:
    splits = manifest["splits"]
    if split not in splits:
        raise ValueError(f"split {split!r} is not in {data_dir} (available: {', '.join(splits)})")
    files = [os.path.join(data_dir, name) for name in splits[split]["shards"]]
    if not files:
        raise ValueError(f"split {split!r} of {data_dir} has no examples")
    return files


def _parse_and_decode(
    serialized: tf.Tensor, num_attributes: int, height: int, width: int, with_sources: bool = False,
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION,
) -> tuple[tf.Tensor, ...]:
    features = example.parse_example(serialized, num_attributes)
    # No size limit here: alm-convert checked every image against its own
    # --max_image_pixels before writing the records.
    image = preprocessing.decode_image(features[example.ENCODED], max_pixels=None,
                                       exif_orientation=exif_orientation)
    image = preprocessing.resize_images(image, height, width)
    labels = tf.cast(features[example.ATTRIBUTES], tf.float32)
    if with_sources:
        return image, labels, features[example.SOURCE]
    return image, labels


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
    height, width = preprocessing._image_size(image_size)  # pylint: disable=protected-access
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1. Received: shuffle_buffer={shuffle_buffer}")
    manifest = read_manifest(data_dir)
    num_attributes = len(manifest["attributes"])
    files = _shard_files(data_dir, manifest, split)
    records.check_split(data_dir, split, manifest, allow_corrupt=allow_corrupt_records)
    if allow_corrupt_records:  # a missing file would make ignore_errors() retry forever
        files = [f for f in files if os.path.isfile(f)]
    drop_remainder = training if drop_remainder is None else drop_remainder
    deterministic = seed is not None or not training

    shard_records = None
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        if len(files) >= n:
            files = files[i::n]
        elif n > 1:
            shard_records = (n, i)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    def read(f: tf.Tensor) -> tf.data.Dataset:
        shard = tf.data.TFRecordDataset(f)
        return shard.ignore_errors(log_warning=True) if allow_corrupt_records else shard

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

    def load(serialized: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return _parse_and_decode(serialized, num_attributes, height, width, with_sources, exif_orientation)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if allow_corrupt_records:  # a record or image that fails in `load`: drop it, log a warning
        ds = ds.ignore_errors(log_warning=True)
    if training:
        if seed is not None:
            flip_seeds = tf.data.Dataset.random(seed=seed).batch(2)
            ds = tf.data.Dataset.zip(ds, flip_seeds)
            ds = ds.map(
                lambda xy, s: (tf.image.stateless_random_flip_left_right(xy[0], seed=s), *xy[1:]),
                num_parallel_calls=AUTOTUNE,
                deterministic=True,
            )
        else:
            ds = ds.map(
                lambda x, *rest: (tf.image.random_flip_left_right(x), *rest),
                num_parallel_calls=AUTOTUNE,
                deterministic=False,
            )
    if normalize:
        ds = ds.map(lambda x, *rest: (preprocessing.normalize_images(x), *rest),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:  # Sharded here already.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)
