"""What a conversion is asked to do: `ConvertConfig` (validated on
construction) and the parsers of the split options (`alm_tf.data.convert`
runs it)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence

from alm_tf.data.labels import DEFAULT_UNCERTAIN, check_uncertain
from alm_tf.data.readers import FORMATS
from alm_tf.data.schemas import SCHEMAS
from alm_tf.data.writing import check_shard_options
from alm_tf.preprocessing import image_input

_SPLIT_NAME_RE = re.compile(r"^[A-Za-z0-9_.]+$")

__all__ = ["ConvertConfig", "parse_list_annotations", "parse_splits"]


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
