"""Tiny annotation files of every `--format`, in the real layouts (the readers'
tests read them), and `with_images`, which writes a small image for the rows
of one so that it converts (the engine tests convert them)."""

from __future__ import annotations

import os

import numpy as np

from alm_tf.data import schemas
from alm_tf.data.readers import open_source
from tests.data.data_helpers import cell, savemat, struct_cell, write_csv, write_image


def pa100k(path, missing=None):
    """annotation.mat: 4 train, 2 val, 3 test rows; returns (path, variables)."""
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


def rap(path, n=6, drop_field=None):
    """RAP v1's RAP_annotation.mat (uncertain values in rows 0 and 1); returns (path, labels)."""
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


def rapv2(path, n=5):
    """RAP v2's RAP_annotation.mat; returns (path, data)."""
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
    return savemat(path, {"RAP_annotation": ann}), data


def peta_mat(path, n=6):
    """PETA.mat; returns (path, data)."""
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
    return savemat(path, {"peta": peta}), data


def peta_folder(root):
    """The 'PETA dataset' folder with its BMP / PNG images and Label.txt files (one id without an image)."""
    for name in ("0001_a.bmp", "0001_b.bmp", "0002_x.png"):
        write_image(os.path.join(root, "3DPeS", "archive", name))
    with open(os.path.join(root, "3DPeS", "archive", "Label.txt"), "w", encoding="utf-8") as f:
        f.write("1 personalLess30 hairLong accessoryHat upperBodyBlack\n"
                "0002 carryingBackpack\n0003 personalMale\n")
    write_image(os.path.join(root, "CUHK", "archive", "0007.png"))
    with open(os.path.join(root, "CUHK", "archive", "Label.txt"), "w", encoding="utf-8") as f:
        f.write("0007.png personalLess45 footwearSneaker\n")
    return root


def alm_list(folder):
    """PETA-schema train.txt (its second row one label short) and test.txt; returns (train, test)."""
    train = os.path.join(folder, "train.txt")
    with open(train, "w", encoding="utf-8") as f:
        f.write("PETA_dataset/GRID/a.jpeg " + " ".join(["1"] * 35) + " \n\nb.jpeg " + " ".join(["0"] * 34) + "\n")
    test = os.path.join(folder, "test.txt")
    with open(test, "w", encoding="utf-8") as f:
        f.write("c.jpeg " + " ".join(["0"] * 35) + "\n")
    return train, test


def csv(path):
    return write_csv(path, ["image", "split", "x", "y"], [["i/1.png", "test", 0, 1], ["i/2.png", "train", 1, 0]])


#: The sources `with_images` writes: every format, PETA in both of its layouts.
CASES = ("csv", "alm_list", "peta", "peta_folder", "rap", "rapv2", "pa100k")


def with_images(case, folder):
    """A small source of `case` (one of CASES) in `folder`, with an image for
    every row but its last (a missing file, reported as such); PETA's folder
    layout comes with its images (BMP among them) and an id without one.
    Returns (format, annotations, images_dir, schema), as `ConvertConfig` takes them."""
    os.makedirs(folder, exist_ok=True)
    fmt, schema = case, None
    if case == "peta_folder":
        return "peta", peta_folder(os.path.join(folder, "PETA dataset")), os.path.join(folder, "PETA dataset"), None
    if case == "alm_list":
        train, test = alm_list(folder)
        annotations, schema = (("trainval", train), ("test", test)), "peta"
    elif case == "peta":
        annotations = peta_mat(os.path.join(folder, "PETA.mat"))[0]
    elif case == "csv":
        annotations = csv(os.path.join(folder, "ann.csv"))
    else:
        annotations = {"pa100k": pa100k, "rap": rap, "rapv2": rapv2}[case](os.path.join(folder, f"{case}.mat"))[0]
    source = open_source(fmt, dict(annotations) if fmt == "alm_list" else annotations, schema=schema)
    rows = list(source.iter_rows())
    for k, row in enumerate(rows[:-1]):
        write_image(os.path.join(folder, row.image), h=8 + k % 3, w=6, seed=k)
    return fmt, annotations, folder, schema
