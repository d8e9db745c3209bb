"""PETA readers: `PETA.mat` (DeepMAR layout) and the original folder layout."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import numpy as np

from alm_tf.data.readers._common import (
    DataFormatError,
    Row,
    Source,
    cell_elements,
    cell_strings,
    check_partition,
    index_vector,
    label_rows,
    load_mat,
    mat_variable,
    struct_field,
)
from alm_tf.data.schemas import PETA_ATTRIBUTES, PETA_TOKENS

MAT_SPLITS = ("train", "val", "test")
# Folder layout: no official split; a person (subset + id) is assigned by a
# hash of its id to train / val / test in PETA's 50 / 10 / 40 proportions.
FOLDER_SPLITS = ("train", "val", "test")
_NUM_ID_COLUMNS = 4


def read_peta(
    annotations: str | os.PathLike,
    *,
    partition: int = 0,
    all_attributes: bool = False,
) -> Source:
    """Opens PETA: a `.mat` file (DeepMAR layout) or the release's root folder.

    Args:
        annotations: `PETA.mat`, or the `PETA dataset` folder holding
            `<subset>/archive/Label.txt`.
        partition: which of the 5 splits of `partion_attribute` (0-4;
            `.mat` layout only).
        all_attributes: all 105 attributes instead of the 35 evaluated.

    Returns:
        A Source. The `.mat` layout gives image paths `images/%05d.png`, the
        folder layout `<subset>/archive/<file>` (so `--images_dir` is the
        folder that holds them).
    """
    path = os.fspath(annotations)
    if os.path.isdir(path):
        return _read_folder(path, all_attributes=all_attributes)
    return _read_mat(path, partition=partition, all_attributes=all_attributes)


def _read_mat(path: str, *, partition: int, all_attributes: bool) -> Source:
    peta = mat_variable(load_mat(path), "peta", path)
    where = f"{path}: peta"
    data = np.asarray(struct_field(peta, "data", where))
    attribute = cell_strings(struct_field(peta, "attribute", where), f"{where}.attribute")
    num_eval = len(PETA_ATTRIBUTES)
    if data.ndim != 2 or data.shape[1] != _NUM_ID_COLUMNS + len(attribute) or len(attribute) < num_eval:
        raise DataFormatError(
            f"{where}.data has shape {data.shape}, expected (N, {_NUM_ID_COLUMNS} + "
            f"{len(attribute)} attributes)"
        )
    num_attr = len(attribute) if all_attributes else num_eval
    labels = data[:, _NUM_ID_COLUMNS : _NUM_ID_COLUMNS + num_attr]
    attributes = PETA_ATTRIBUTES + tuple(attribute[num_eval:num_attr])
    names = [f"images/{int(i):05d}.png" for i in data[:, 0]]
    parts = cell_elements(struct_field(peta, "partion_attribute", where))
    check_partition(partition, len(parts), f"{where}.partion_attribute")
    pwhere = f"{where}.partion_attribute[{partition + 1}]"
    splits = [
        (s, index_vector(struct_field(parts[partition], s, pwhere), len(names), f"{pwhere}.{s}"))
        for s in MAT_SPLITS
    ]
    return Source("peta", attributes, MAT_SPLITS, label_rows(names, labels, splits, "data"))


def _folder_split(subset: str, person: str) -> str:
    bucket = zlib.crc32(f"{subset}/{person}".encode()) % 100
    return "train" if bucket < 50 else ("val" if bucket < 60 else "test")


def _key(token: str) -> str:
    """Ids compare as numbers when numeric (`1` names `0001_...`)."""
    return str(int(token)) if token.isdigit() else token


def _image_keys(subset: str, file_name: str) -> tuple[str, ...]:
    """The Label.txt ids that name this file: the prefix before the first
    `_`, or for CUHK the whole file name (with or without extension)."""
    if subset.upper().startswith("CUHK"):
        stem = os.path.splitext(file_name)[0]
        return (file_name,) if stem == file_name else (file_name, _key(stem))
    return (_key(file_name.split("_", 1)[0]),)


def _read_folder(root: str, *, all_attributes: bool) -> Source:
    subsets = sorted(
        d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "archive", "Label.txt"))
    )
    if not subsets:
        raise DataFormatError(f"{root}: no <subset>/archive/Label.txt found")
    entries: list[tuple[str, int, str, frozenset[str]]] = []
    seen_tokens: set[str] = set()
    for subset in subsets:
        label_path = os.path.join(root, subset, "archive", "Label.txt")
        with open(label_path, encoding="utf-8", errors="replace") as f:
            for line_no, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                tokens = frozenset(parts[1:])
                seen_tokens |= tokens
                entries.append((subset, line_no, parts[0], tokens))
    tokens = PETA_TOKENS
    if all_attributes:
        tokens = PETA_TOKENS + tuple(sorted(seen_tokens - set(PETA_TOKENS)))
    attributes = PETA_ATTRIBUTES + tokens[len(PETA_TOKENS) :]

    def iter_rows() -> Iterator[Row]:
        listing: dict[str, dict[str, list[str]]] = {}
        for subset, line_no, person, person_tokens in entries:
            if subset not in listing:
                groups: dict[str, list[str]] = {}
                archive = os.path.join(root, subset, "archive")
                for name in sorted(os.listdir(archive)):
                    if name != "Label.txt" and os.path.isfile(os.path.join(archive, name)):
                        for key in _image_keys(subset, name):
                            groups.setdefault(key, []).append(name)
                listing = {subset: groups}
            files = listing[subset].get(_key(person))
            labels = tuple(int(t in person_tokens) for t in tokens)
            split = _folder_split(subset, person)
            source = f"{subset}/archive/Label.txt:{line_no}"
            for name in files or [person]:  # No image: reported as a missing file.
                yield Row(f"{subset}/archive/{name}", labels, split, source)

    return Source("peta", attributes, FOLDER_SPLITS, iter_rows)
