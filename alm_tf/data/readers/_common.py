"""Shared pieces of the annotation readers: rows, sources and MATLAB helpers."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import scipy.io

from alm_tf.data.labels import UNCERTAIN_POLICIES, apply_uncertain

#: The split names the trainer and the evaluator know; a split named in the
#: data (the CSV `split` column) outside these is refused unless `--splits`
#: names it (`alm_tf.data.convert`).
KNOWN_SPLITS = ("train", "trainval", "val", "test")

__all__ = [
    "KNOWN_SPLITS",
    "DataFormatError",
    "require_file",
    "Row",
    "Source",
    "UNCERTAIN_POLICIES",
    "apply_uncertain",
    "load_mat",
    "mat_variable",
    "struct_field",
    "cell_elements",
    "cell_strings",
    "index_vector",
]

class DataFormatError(ValueError):
    """The annotation file does not have the expected layout."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One annotated image as the source wrote it, not yet validated.

    Args:
        image: the image path as the annotation wrote it, relative to the
            images folder.
        labels: the raw label values (ints, floats or strings), one per
            attribute of the source's schema when the source is well formed.
        split: the split the source assigns the row to.
        source: where the row comes from (file and line or variable and
            index), for the conversion report.
    """

    image: str
    labels: tuple[Any, ...]
    split: str
    source: str


@dataclasses.dataclass(frozen=True)
class Source:
    """An opened annotation source.

    Args:
        dataset: the data set's name (written to the manifest).
        attributes: the attribute names of the label columns, in order.
        splits: the split names the source provides, in order.
        iter_rows: a callable returning a fresh iterator over the rows; it
            can be called several times and yields the same rows each time.
    """

    dataset: str
    attributes: tuple[str, ...]
    splits: tuple[str, ...]
    iter_rows: Callable[[], Iterator[Row]]

    def __post_init__(self) -> None:
        if not self.attributes:
            raise DataFormatError(f"{self.dataset}: the annotations name no attributes.")
        if len(set(self.attributes)) != len(self.attributes):
            dup = sorted({a for a in self.attributes if self.attributes.count(a) > 1})
            raise DataFormatError(f"{self.dataset}: duplicate attribute names {dup}.")


def require_file(path: str, what: str = "annotation file") -> None:
    """DataFormatError naming the path when it is a folder or does not exist."""
    if os.path.isdir(path):
        raise DataFormatError(f"{what} {path!r} is a folder, not a file")
    if not os.path.isfile(path):
        raise DataFormatError(f"{what} not found: {path!r}")


def load_mat(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a MATLAB file with scipy, raising DataFormatError on failure."""
    path = os.fspath(path)
    require_file(path, "MATLAB annotation file")
    try:
        return scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for bad files.
        raise DataFormatError(f"cannot read MATLAB file {path}: {e}") from None


def mat_variable(mat: dict[str, Any], name: str, path: str) -> np.ndarray:
    """Returns the top-level variable `name` of a loaded MATLAB file."""
    if name not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataFormatError(f"{path}: variable {name!r} is missing (found: {found})")
    return mat[name]


def struct_field(struct: Any, name: str, where: str) -> np.ndarray:
    """Returns field `name` of a MATLAB struct as loaded by scipy.

    Accepts a (1, 1) structured array (`mat['S']`) or one record of a
    struct array. Equivalent to `mat['S'][name][0][0]`.
    """
    if isinstance(struct, np.ndarray) and struct.dtype.names is None and struct.dtype == object:
        if struct.size != 1:
            raise DataFormatError(f"{where}: expected a struct, found a cell of {struct.size}")
        struct = struct.flat[0]
    names = struct.dtype.names
    if names is None:
        raise DataFormatError(f"{where}: expected a struct with field {name!r}")
    if name not in names:
        raise DataFormatError(f"{where}: field {name!r} is missing (found: {list(names)})")
    if isinstance(struct, np.ndarray):
        if struct.size != 1:
            raise DataFormatError(f"{where}: expected one struct, found {struct.size}")
        return struct[name].flat[0]
    return struct[name]


def cell_elements(cell: np.ndarray) -> list[Any]:
    """The elements of a MATLAB cell (or struct) array, in storage order."""
    return list(np.asarray(cell).flat) if np.asarray(cell).size else []


def cell_strings(cell: np.ndarray, where: str) -> list[str]:
    """A MATLAB cell array of strings as a list of str (`cell[i][0][0]`)."""
    out = []
    for k, item in enumerate(cell_elements(cell)):
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.flat[0]
        if isinstance(item, np.ndarray):
            if item.size == 0:
                out.append("")
                continue
            if item.dtype.kind not in "US":
                raise DataFormatError(f"{where}: element {k + 1} is not a string")
            item = item.flat[0]
        out.append(str(item).strip())
    return out


def index_vector(values: Any, size: int, where: str) -> np.ndarray:
    """A 1-based MATLAB index vector as 0-based int64, range-checked."""
    while isinstance(values, np.ndarray) and values.dtype == object and values.size == 1:
        values = values.flat[0]
    arr = np.asarray(values).reshape(-1)
    if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise DataFormatError(f"{where}: index vector holds non-integer values")
    idx = arr.astype(np.int64) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise DataFormatError(
            f"{where}: 1-based indices must lie in 1..{size}, found {idx.min() + 1}..{idx.max() + 1}"
        )
    return idx


def check_partition(partition: int, available: int, where: str) -> None:
    """Raises DataFormatError when `partition` is not one of the file's splits."""
    if not 0 <= partition < available:
        raise DataFormatError(
            f"{where}: partition must be in 0..{available - 1}. Received: partition={partition}"
        )


def label_rows(
    names: Sequence[str],
    labels: np.ndarray,
    splits: Sequence[tuple[str, np.ndarray]],
    what: str,
) -> Callable[[], Iterator[Row]]:
    """A re-iterable row factory over a label matrix and per-split indices."""

    def iter_rows() -> Iterator[Row]:
        for split, indices in splits:
            for i in indices:
                yield Row(
                    image=names[i],
                    labels=tuple(labels[i].tolist()),
                    split=split,
                    source=f"{what}[{i + 1}]",
                )

    return iter_rows
