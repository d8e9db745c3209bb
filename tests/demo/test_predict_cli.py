"""alm-predict on every model form: a model dir, its .keras file, an older
.keras without a description, a SavedModel export root; bad input.

The model is the real ALM head (pyramid, three ALM levels, fusion, boxes)
on a tiny backbone (alm_tf/testing/mini_model.py), written as the
trainer writes a model dir and exported as alm-export does, so these tests
load in seconds; the tiny demo (test_demo_end_to_end.py) predicts through
its real BN-Inception export.
"""

import csv
import json
import math
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from alm_tf import artifacts
from alm_tf.serving import export
from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main


def _run_main(module_name, args):
    return run_main(module_name, args)

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{"alm_model": a model dir, "saved_model": E/1, "export": E} of the mini ALM model."""
    root = tmp_path_factory.mktemp("models")
    model = ph.mini_alm_model()
    model_dir = str(root / "alm")
    ph.write_model_dir(model_dir, model)
    export_dir = str(root / "export")
    saved = export.export_saved_model(export.load_source(model_dir), export_dir, 1)
    return {"alm_model": model_dir, "saved_model": saved, "export": export_dir, "root": root}


@pytest.fixture(scope="module")
def image_folder(models):
    folder = models["root"] / "photos"
    folder.mkdir()
    for i, image in enumerate(ph.images(2, image_size=(160, 72), seed=3).astype(np.uint8)):
        Image.fromarray(image).save(folder / f"person_{i}.jpg", quality=92)
    Image.new("L", (37, 91), 100).save(folder / "gray_odd_size.png")
    Image.new("RGBA", (300, 500), (10, 200, 30, 128)).save(folder / "big_rgba.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    return folder


def _check_predict_output(out_dir, expected_images):
    with open(os.path.join(out_dir, "predictions.csv")) as f:
        rows = list(csv.DictReader(f))
    assert sorted(os.path.basename(r["image"]) for r in rows) == sorted(expected_images)
    assert all(0 <= float(r["hat_prob"]) <= 1 and r["hat"] in ("0", "1") for r in rows)
    pictures = sorted(os.listdir(os.path.join(out_dir, "pictures")))
    assert len(pictures) == len(expected_images)
    for name in pictures:
        with Image.open(os.path.join(out_dir, "pictures", name)) as im:
            assert im.format == "PNG"
    return rows


@pytest.mark.parametrize("which", ["keras", "saved_model", "model_dir"])
def test_predict_cli_models(models, image_folder, tmp_path, which):
    p = models
    model = {"keras": os.path.join(p["alm_model"], "final.keras"),
             "saved_model": p["export"],  # the export root: its highest version is used
             "model_dir": p["alm_model"]}[which]
    code, stdout, stderr = _run_main("pipelines.predict", [
        f"--model={model}", f"--images={image_folder}", f"--output_dir={tmp_path}", "--noprogress"])
    assert code == 0, stderr
    assert "broken.jpg" in stderr and "skipped" in stderr
    good = sorted(n for n in os.listdir(image_folder) if n != "broken.jpg")
    rows = _check_predict_output(tmp_path, good)
    assert "predicted 4 images (1 skipped)" in stdout
    if which == "keras":
        # Same pixels, same model: .keras and SavedModel agree on the probabilities.
        code, _, stderr = _run_main("pipelines.predict", [
            f"--model={p['saved_model']}", f"--images={image_folder}",
            f"--output_dir={tmp_path / 'sm'}", "--noprogress", "--nopictures"])
        assert code == 0, stderr
        with open(tmp_path / "sm" / "predictions.csv") as f:
            other = {r["image"]: r for r in csv.DictReader(f)}
        for row in rows:
            assert math.isclose(float(row["hat_prob"]), float(other[row["image"]]["hat_prob"]), abs_tol=2e-3)


def test_predict_cli_glob_and_attributes_file(models, image_folder, tmp_path):
    p = models
    # The trainer's .keras carries its names: a copy alone predicts.
    carried = tmp_path / "carried.keras"
    shutil.copy(os.path.join(p["alm_model"], "final.keras"), carried)
    code, _, stderr = _run_main("pipelines.predict", [
        f"--model={carried}", f"--images={image_folder}/*.png", f"--output_dir={tmp_path / 'c'}",
        "--noprogress"])
    assert code == 0, stderr
    # A file of an earlier version (no description inside) needs the names.
    lone = tmp_path / "lone.keras"
    with zipfile.ZipFile(carried) as src, zipfile.ZipFile(lone, "w") as dst:
        for item in src.infolist():
            if item.filename != artifacts.KERAS_METADATA:
                dst.writestr(item, src.read(item.filename))
    code, _, stderr = _run_main("pipelines.predict", [
        f"--model={lone}", f"--images={image_folder}/*.png", f"--output_dir={tmp_path / 'o'}", "--noprogress"])
    assert code == 1 and "attributes file" in stderr.strip().splitlines()[-1]
    names = tmp_path / "names.txt"
    with open(os.path.join(p["alm_model"], "config.json")) as f:
        names.write_text("\n".join(json.load(f)["attributes"]) + "\n")
    code, _, stderr = _run_main("pipelines.predict", [
        f"--model={lone}", f"--attributes_file={names}", f"--images={image_folder}/*.png",
        f"--output_dir={tmp_path / 'o'}", "--noprogress"])
    assert code == 0, stderr
    _check_predict_output(tmp_path / "o", ["big_rgba.png", "gray_odd_size.png"])


@pytest.mark.parametrize("args,needle", [
    (["--images={folder}/*.gif"], "no files match"),
    (["--images={folder}/broken.jpg"], "broken.jpg: not an image file"),
    (["--images={folder}", "--model=/nonexistent/model"], "--model not found"),
    (["--images=/nonexistent/dir/"], "no such file"),
])
def test_predict_cli_errors(models, image_folder, tmp_path, args, needle):
    model = os.path.join(models["alm_model"], "final.keras")
    args = [a.format(folder=image_folder) for a in args]
    if not any(a.startswith("--model=") for a in args):
        args.append(f"--model={model}")
    code, _, stderr = _run_main("pipelines.predict", args + [f"--output_dir={tmp_path}", "--noprogress"])
    assert code == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("alm-predict: error:") and needle in last, stderr
    assert "Traceback" not in stderr


def test_predict_cli_needs_a_model(tmp_path):
    code, _, stderr = _run_main("pipelines.predict", [f"--images={tmp_path}", f"--output_dir={tmp_path}"])
    assert code == 1 and stderr.strip() == "alm-predict: error: --model or --server is required"


