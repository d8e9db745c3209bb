"""Readers of every source layout, on small files written in the real layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io
from tests.data.data_helpers import cell, savemat, struct_cell, write_csv, write_image

from alm_tf.data import schemas
from alm_tf.data.readers import DataFormatError, open_source


def _rows(source):
    return list(source.iter_rows())


def _pa100k(path, missing=None):
    rng = np.random.default_rng(0)
    sizes = {"train": 4, "val": 2, "test": 3}
    variables = {"attributes": cell(schemas.PA100K_ATTRIBUTES)}
    start = 1
    for split, n in sizes.items():
        variables[f"{split}_images_name"] = cell([f"{i:06d}.jpg" for i in range(start, start + n)])
        variables[f"{split}_label"] = rng.integers(0, 2, size=(n, 26)).astype(np.uint8)
        start += n
    variables.pop(missing, None)
    return savemat(path, variables), variables


def test_pa100k(tmp_path):
    path, v = _pa100k(str(tmp_path / "annotation.mat"))
    mat = scipy.io.loadmat(path)
    assert mat["train_images_name"][1][0][0] == "000002.jpg"  # The original's indexing.
    src = open_source("pa100k", path)
    assert src.attributes == schemas.PA100K_ATTRIBUTES and src.splits == ("train", "val", "test")
    rows = _rows(src)
    assert [r.split for r in rows] == ["train"] * 4 + ["val"] * 2 + ["test"] * 3
    assert rows[4].image == "000005.jpg" and rows[4].labels == tuple(v["val_label"][0].tolist())
    assert _rows(src) == rows  # Re-iterable.


def test_pa100k_missing_variable_is_a_clear_error(tmp_path):
    path, _ = _pa100k(str(tmp_path / "annotation.mat"), missing="val_label")
    with pytest.raises(DataFormatError, match="'val_label' is missing"):
        open_source("pa100k", path)


def _rap(path, n=6, drop_field=None):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(n, 92)).astype(np.float64)
    labels[0, 0] = 2  # Gender uncertain.
    labels[1, 60] = 2
    parts = [
        {"trainval_index": np.array([[1, 2, 3, 4]]) if k == 0 else np.array([[3, 4, 5, 6]]),
         "test_index": np.array([[5, 6]]) if k == 0 else np.array([[1, 2]])}
        for k in range(5)
    ]
    ann = {
        "partion": struct_cell(parts),
        "label": labels,
        "attribute_chinese": cell([f"c{i}" for i in range(92)]),
        "attribute_eng": cell([f"eng{i}" for i in range(92)]),
        "position": np.zeros((n, 16)),
        "imagesname": cell([f"CAM01_{i}.png" for i in range(n)]),
        "attribute_exp": cell([f"e{i}" for i in range(92)]),
    }
    ann.pop(drop_field, None)
    return savemat(path, {"RAP_annotation": ann}), labels


def test_rap_v1(tmp_path):
    path, labels = _rap(str(tmp_path / "RAP_annotation.mat"))
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
    path, _ = _rap(str(tmp_path / "RAP_annotation.mat"), drop_field=field)
    with pytest.raises(DataFormatError, match=f"field '{field}' is missing"):
        open_source("rap", path)


def test_rap_bad_partition(tmp_path):
    path, _ = _rap(str(tmp_path / "RAP_annotation.mat"))
    with pytest.raises(DataFormatError, match="partition"):
        open_source("rap", path, partition=7)


def test_rap_v2(tmp_path):
    n = 5
    rng = np.random.default_rng(2)
    data = rng.integers(0, 3, size=(n, 152)).astype(np.uint8)
    parts = [{"train_index": np.array([[1, 2]]), "val_index": np.array([[3]]), "test_index": np.array([[4, 5]])}] * 5
    ann = {
        "name": cell([f"CAM{i}.png" for i in range(n)]),
        "data": data,
        "attribute": cell([f"attr{i}" for i in range(152)]),
        "selected_attribute": np.array([schemas.RAPV2_SELECTED_COLUMNS]),
        "partition_attribute": struct_cell(parts, row=True),
    }
    path = savemat(str(tmp_path / "RAP_annotation.mat"), {"RAP_annotation": ann})
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
    n = 6
    rng = np.random.default_rng(3)
    data = np.zeros((n, 109))
    data[:, 0] = np.arange(1, n + 1)
    data[:, 4:] = rng.integers(0, 2, size=(n, 105))
    parts = [{"train": np.array([[1, 2, 3]]), "val": np.array([[4]]), "test": np.array([[5, 6]])}] * 5
    peta = {
        "data": data,
        "attribute": cell(list(schemas.PETA_TOKENS) + [f"tok{i}" for i in range(70)]),
        "selected_attribute": np.arange(1, 36)[None],
        "partion_attribute": struct_cell(parts, row=True),
    }
    path = savemat(str(tmp_path / "PETA.mat"), {"peta": peta})
    src = open_source("peta", path)
    assert src.attributes == schemas.PETA_ATTRIBUTES
    rows = _rows(src)
    assert rows[0].image == "images/00001.png" and rows[5].image == "images/00006.png"
    assert [r.split for r in rows] == ["train"] * 3 + ["val"] + ["test"] * 2
    assert rows[3].labels == tuple(data[3, 4:39].tolist())
    assert len(open_source("peta", path, all_attributes=True).attributes) == 105


def test_peta_folder(tmp_path):
    root = tmp_path / "PETA dataset"
    for name in ("0001_a.bmp", "0001_b.bmp", "0002_x.png"):
        write_image(str(root / "3DPeS" / "archive" / name))
    (root / "3DPeS" / "archive" / "Label.txt").write_text(
        "1 personalLess30 hairLong accessoryHat upperBodyBlack\n"
        "0002 carryingBackpack\n0003 personalMale\n"
    )
    write_image(str(root / "CUHK" / "archive" / "0007.png"))
    (root / "CUHK" / "archive" / "Label.txt").write_text("0007.png personalLess45 footwearSneaker\n")
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
    train = tmp_path / "train.txt"
    train.write_text("PETA_dataset/GRID/a.jpeg " + " ".join(["1"] * 35) + " \n\nb.jpeg " + " ".join(["0"] * 34) + "\n")
    test = tmp_path / "test.txt"
    test.write_text("c.jpeg " + " ".join(["0"] * 35) + "\n")
    src = open_source("alm_list", {"trainval": str(train), "test": str(test)}, schema="peta")
    rows = _rows(src)
    assert src.attributes == schemas.PETA_ATTRIBUTES and src.splits == ("trainval", "test")
    assert [(r.image, r.split, len(r.labels)) for r in rows] == [
        ("PETA_dataset/GRID/a.jpeg", "trainval", 35), ("b.jpeg", "trainval", 34), ("c.jpeg", "test", 35)
    ]
    assert rows[1].source == "train.txt:3"
    with pytest.raises(DataFormatError, match="not found"):
        open_source("alm_list", {"test": str(tmp_path / "nope.txt")}, schema="rap")
    with pytest.raises(ValueError, match="schema"):
        open_source("alm_list", {"test": str(test)}, schema="bogus")


def test_csv(tmp_path):
    path = write_csv(str(tmp_path / "a.csv"), ["image", "split", "x", "y"], [["i/1.png", "test", 0, 1], ["i/2.png", "train", 1, 0]])
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
