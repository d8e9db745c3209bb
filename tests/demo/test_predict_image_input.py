"""alm-predict and alm-convert on hostile or unusual images: size bombs
skipped with one line before decoding (frames: one line, exit 1), WebP as
a file and in a folder, picture names that keep non-ASCII letters."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from tests import image_bombs
from alm_tf.testing import mini_model as ph
from alm_tf.preprocessing import image_input
from tests.cli_helpers import run_main

LIMIT = image_input.DEFAULT_MAX_IMAGE_PIXELS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model dir of the mini ALM model, as the trainer writes it."""
    root = tmp_path_factory.mktemp("model")
    model_dir = str(root / "alm")
    ph.write_model_dir(model_dir)
    return model_dir


@pytest.fixture()
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    people = ph.images(3, image_size=(96, 48), seed=5).astype(np.uint8)
    Image.fromarray(people[0]).save(photos / "Zoë_行人.jpg", quality=92)
    Image.fromarray(people[1]).save(photos / "Zoë_行人.png")
    Image.fromarray(people[2]).save(photos / "walker.webp", lossless=True)
    (photos / "huge.jpg").write_bytes(image_bombs.jpeg_bomb(20000, 20000))  # Pillow's own limit
    (photos / "large.png").write_bytes(image_bombs.png_bomb(12000, 12000))  # ours
    return photos


def _rows(out):
    with open(os.path.join(out, "predictions.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_bombs_skipped_webp_read_names_kept(model_dir, folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = run_main("pipelines.predict", [
        f"--model={model_dir}", f"--images={folder}", f"--output_dir={out}", "--noprogress"])
    assert code == 0, stderr
    assert "Traceback" not in stderr
    skipped = [line for line in stderr.splitlines() if line.startswith("alm-predict: skipped")]
    assert skipped == [
        f"alm-predict: skipped {folder / 'huge.jpg'}: image of 400000000 pixels exceeds "
        f"--max_image_pixels={LIMIT}",
        f"alm-predict: skipped {folder / 'large.png'}: image of 12000x12000 = 144000000 pixels "
        f"exceeds --max_image_pixels={LIMIT}"]
    assert "predicted 3 images (2 skipped)" in stdout
    rows = _rows(out)
    assert sorted(os.path.basename(r["image"]) for r in rows) == sorted(
        ["walker.webp", "Zoë_行人.jpg", "Zoë_行人.png"])
    assert sorted(r["picture"] for r in rows) == sorted(
        ["pictures/walker.png", "pictures/Zoë_行人.png", "pictures/Zoë_行人_2.png"])
    assert sorted(os.listdir(out / "pictures")) == sorted(["walker.png", "Zoë_行人.png", "Zoë_行人_2.png"])
    with open(out / "predictions.jsonl", encoding="utf-8") as f:
        assert len([json.loads(line) for line in f]) == 3


def test_webp_file_alone_and_a_lower_limit(model_dir, folder, tmp_path):
    code, stdout, stderr = run_main("pipelines.predict", [
        f"--model={model_dir}", f"--images={folder / 'walker.webp'}", f"--output_dir={tmp_path / 'a'}",
        "--noprogress"])
    assert code == 0 and "predicted 1 images (0 skipped)" in stdout, stderr
    # A limit below every image: nothing is readable, one line, nothing written.
    code, _, stderr = run_main("pipelines.predict", [
        f"--model={model_dir}", f"--images={folder / 'walker.webp'}", f"--output_dir={tmp_path / 'b'}",
        "--noprogress", "--max_image_pixels=100"])
    assert code == 1 and stderr.strip().splitlines() == [
        f"alm-predict: error: cannot read {folder / 'walker.webp'}: image of 48x96 = 4608 pixels "
        "exceeds --max_image_pixels=100"]
    assert not os.path.exists(tmp_path / "b")


def test_a_bomb_frame_ends_the_people_run_with_one_line(model_dir, tmp_path):
    frames = tmp_path / "img1"
    frames.mkdir()
    Image.fromarray(ph.images(1, image_size=(120, 160), seed=1)[0].astype(np.uint8)).save(frames / "000001.jpg")
    (frames / "000002.jpg").write_bytes(image_bombs.jpeg_bomb(12000, 9000))
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,40,80,0.9\n2,-1,10,10,40,80,0.9\n")
    code, _, stderr = run_main("pipelines.predict", [
        f"--model={model_dir}", f"--images={frames}", f"--boxes={det}", f"--output_dir={tmp_path / 'v'}",
        "--noprogress"])
    assert code == 1, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"alm-predict: error: frame {str(frames / '000002.jpg')!r}: image of 12000x9000 = 108000000 "
        f"pixels exceeds --max_image_pixels={LIMIT}")
    assert "Traceback" not in stderr and not os.path.exists(tmp_path / "v")


def test_convert_reports_a_bomb_row_and_takes_webp(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(ph.images(1, image_size=(20, 10), seed=2)[0].astype(np.uint8)).save(
        src / "a.webp", lossless=True)
    (src / "b.jpg").write_bytes(image_bombs.jpeg_bomb(12000, 9000))
    (src / "ann.csv").write_text("image,split,x\na.webp,train,1\nb.jpg,train,0\n")
    out = tmp_path / "out"
    code, _, stderr = run_main("pipelines.convert", [
        "--format=csv", f"--annotations={src / 'ann.csv'}", f"--images_dir={src}",
        f"--output_dir={out}", "--noprogress"])
    assert code == 0, stderr
    with open(out / "manifest.json") as f:
        split = json.load(f)["splits"]["train"]
    assert split["num_examples"] == 1
    assert [(s["image"], s["reason"]) for s in split["skipped"]] == [("b.jpg", "unreadable image")]
    assert f"12000x9000 = 108000000 pixels exceeds --max_image_pixels={LIMIT}" in split["skipped"][0]["detail"]
