"""Readers of every source layout, on small files written in the real layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io
from tests.data import format_sources as sources
from tests.data.data_helpers import write_csv

from alm_tf.data import schemas
from alm_tf.data.readers import DataFormatError, open_source


def _rows(source):
    return list(source.iter_rows())


def test_pa100k(tmp_path):
    path, v = sources.pa100k(str(tmp_path / "annotation.mat"))
    mat = scipy.io.loadmat(path)
    assert mat["train_images_name"][1][0][0] == "000002.jpg"  # The original's indexing.
    src = open_source("pa100k", path)
    assert src.attributes == schemas.PA100K_ATTRIBUTES and src.splits == ("train", "val", "test")
    rows = _rows(src)
    assert [r.split for r in rows] == ["train"] * 4 + ["val"] * 2 + ["test"] * 3
    assert rows[4].image == "000005.jpg" and rows[4].labels == tuple(v["val_label"][0].tolist())
    assert _rows(src) == rows  # Re-iterable.


def test_pa100k_missing_variable_is_a_clear_error(tmp_path):
    path, _ = sources.pa100k(str(tmp_path / "annotation.mat"), missing="val_label")
    with pytest.raises(DataFormatError, match="'val_label' is missing"):
        open_source("pa100k", path)


def test_rap_v1(tmp_path):
    path, labels = sources.rap(str(tmp_path / "RAP_annotation.mat"))
    mat = scipy.io.loadmat(path)
    assert mat["RAP_annotation"]["label"][0][0].shape == (6, 92)
    src = open_source("rap", path)
    assert src.attributes == schemas.RAP_ATTRIBUTES and src.splits == ("trainval", "test")
    rows = _rows(src)
    assert [r.image for r in rows] == [f"CAM01_{i}.png" for i in (0, 1, 2, 3, 4, 5)]
    assert [r.split for r in rows] == ["trainval"] * 4 + ["test"] * 2
    assert rows[0].labels[0] == -1  # Uncertain (2) is unknown by default ("ignore").
    assert _rows(open_source("rap", path, uncertain="zero"))[0].labels[0] == 0
    assert rows[2].labels == tuple(labels[2, :51].tolist())
    # Another partition (1-based indices converted).
    rows1 = _rows(open_source("rap", path, partition=1))
    assert [r.image for r in rows1] == [f"CAM01_{i}.png" for i in (2, 3, 4, 5, 0, 1)]
    # The 'skip' policy keeps 2, so the converter skips the row.
    assert _rows(open_source("rap", path, uncertain="skip"))[0].labels[0] == 2
    # All attributes: 92 columns, the 51 evaluated keep the schema's names.
    every = open_source("rap", path, all_attributes=True)
    assert len(every.attributes) == 92 and every.attributes[51] == "eng51"
    assert _rows(every)[1].labels[60] == -1


@pytest.mark.parametrize("field", ["label", "imagesname", "partion"])
def test_rap_missing_field(tmp_path, field):
    path, _ = sources.rap(str(tmp_path / "RAP_annotation.mat"), drop_field=field)
    with pytest.raises(DataFormatError, match=f"field '{field}' is missing"):
        open_source("rap", path)


def test_rap_bad_partition(tmp_path):
    path, _ = sources.rap(str(tmp_path / "RAP_annotation.mat"))
    with pytest.raises(DataFormatError, match="partition"):
        open_source("rap", path, partition=7)


def test_rap_v2(tmp_path):
    path, data = sources.rapv2(str(tmp_path / "RAP_annotation.mat"))
    src = open_source("rapv2", path)
    cols = [c - 1 for c in schemas.RAPV2_SELECTED_COLUMNS]
    assert len(src.attributes) == 54 and src.attributes[5] == "attr7"
    rows = _rows(src)
    assert [r.split for r in rows] == ["train", "train", "val", "test", "test"]
    assert rows[3].image == "CAM3.png"
    assert rows[3].labels == tuple(np.where(data[3, cols] == 2, -1, data[3, cols].astype(int)).tolist())
    zero = _rows(open_source("rapv2", path, uncertain="zero"))
    assert zero[3].labels == tuple(np.where(data[3, cols] == 2, 0, data[3, cols]).tolist())
    skip = _rows(open_source("rapv2", path, uncertain="skip"))
    assert skip[3].labels == tuple(data[3, cols].tolist())
    assert len(open_source("rapv2", path, all_attributes=True).attributes) == 152


def test_peta_mat(tmp_path):
    path, data = sources.peta_mat(str(tmp_path / "PETA.mat"))
    src = open_source("peta", path)
    assert src.attributes == schemas.PETA_ATTRIBUTES
    rows = _rows(src)
    assert rows[0].image == "images/00001.png" and rows[5].image == "images/00006.png"
    assert [r.split for r in rows] == ["train"] * 3 + ["val"] + ["test"] * 2
    assert rows[3].labels == tuple(data[3, 4:39].tolist())
    assert len(open_source("peta", path, all_attributes=True).attributes) == 105


def test_peta_folder(tmp_path):
    root = sources.peta_folder(str(tmp_path / "PETA dataset"))
    src = open_source("peta", str(root))
    rows = _rows(src)
    by_image = {}
    for r in rows:
        by_image.setdefault(r.image, []).append(r)
    for name in ("0001_a.bmp", "0001_b.bmp"):  # Id 1 names both 0001_* images.
        assert by_image[f"3DPeS/archive/{name}"][0].labels[schemas.PETA_ATTRIBUTES.index("Long hair")] == 1
    assert by_image["3DPeS/archive/0002_x.png"][0].labels[schemas.PETA_ATTRIBUTES.index("Backpack")] == 1
    assert by_image["CUHK/archive/0007.png"][0].labels[schemas.PETA_ATTRIBUTES.index("Sneaker")] == 1
    assert "3DPeS/archive/0003" in by_image  # No image: reported later as a missing file.
    assert len(rows) == 5
    assert all(r.split in ("train", "val", "test") for r in rows)
    every = open_source("peta", str(root), all_attributes=True)
    assert every.attributes[35:] == ("upperBodyBlack",)


def test_alm_list(tmp_path):
    train, test = sources.alm_list(str(tmp_path))
    src = open_source("alm_list", {"trainval": train, "test": test}, schema="peta")
    rows = _rows(src)
    assert src.attributes == schemas.PETA_ATTRIBUTES and src.splits == ("trainval", "test")
    assert [(r.image, r.split, len(r.labels)) for r in rows] == [
        ("PETA_dataset/GRID/a.jpeg", "trainval", 35), ("b.jpeg", "trainval", 34), ("c.jpeg", "test", 35)
    ]
    assert rows[1].source == "train.txt:3"
    with pytest.raises(DataFormatError, match="not found"):
        open_source("alm_list", {"test": str(tmp_path / "nope.txt")}, schema="rap")
    with pytest.raises(ValueError, match="schema"):
        open_source("alm_list", {"test": test}, schema="bogus")


def test_csv(tmp_path):
    path = sources.csv(str(tmp_path / "a.csv"))
    src = open_source("csv", path)
    assert src.attributes == ("x", "y") and src.splits == ("train", "test")
    assert [(r.image, r.labels, r.split) for r in _rows(src)] == [("i/1.png", ("0", "1"), "test"), ("i/2.png", ("1", "0"), "train")]
    no_split = write_csv(str(tmp_path / "b.csv"), ["x", "image"], [[1, "i/1.png"]])
    src = open_source("csv", no_split)
    assert src.splits == ("train",) and _rows(src)[0].labels == ("1",)
    bad = write_csv(str(tmp_path / "c.csv"), ["file", "x"], [["i/1.png", 1]])
    with pytest.raises(DataFormatError, match="'image' column"):
        open_source("csv", bad)


def test_unknown_annotation_file(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        open_source("pa100k", os.path.join(tmp_path, "missing.mat"))
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataFormatError, match="cannot read"):
        open_source("rap", str(tmp_path / "junk.mat"))
