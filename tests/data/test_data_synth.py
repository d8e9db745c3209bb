"""Synthetic pedestrians: determinism, layout, region sanity, speed."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from alm_tf.data import synth
from alm_tf.data.convert import convert
from alm_tf.data.convert_config import ConvertConfig


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode())
            h.update(open(path, "rb").read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "d")
    synth.generate(synth.SynthConfig(out, num_images=60, seed=3))
    return out


def test_deterministic(synth_dir, tmp_path):
    again = str(tmp_path / "again")
    synth.generate(synth.SynthConfig(again, num_images=60, seed=3))
    assert _digest(synth_dir) == _digest(again)
    other = str(tmp_path / "other")
    synth.generate(synth.SynthConfig(other, num_images=60, seed=4))
    assert _digest(other) != _digest(synth_dir)


def test_layout_labels_and_regions(synth_dir):
    with open(os.path.join(synth_dir, "annotations.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60 and list(rows[0])[:2] == ["image", "split"]
    assert tuple(list(rows[0])[2:]) == synth.ATTRIBUTES and len(synth.ATTRIBUTES) >= 8
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert sum(r["split"] == "train" for r in rows) == 42
    regions = synth.load_regions(os.path.join(synth_dir, "regions.json"))
    meta = json.load(open(os.path.join(synth_dir, "regions.json")))["attribute_regions"]
    assert meta == synth.ATTRIBUTE_REGIONS
    for r in rows:
        h, w = Image.open(os.path.join(synth_dir, r["image"])).size[::-1]
        assert 80 <= h <= 240 and 1.6 < h / w < 2.5
        boxes = regions[r["image"]]
        assert set(boxes) == set(synth.REGION_ATTRIBUTES)
        for box in boxes.values():
            y1, x1, y2, x2 = box
            assert 0 <= y1 < y2 <= 1 and 0 <= x1 < x2 <= 1
        # Head above torso above legs above feet.
        centre = {a: (b[0] + b[2]) / 2 for a, b in boxes.items()}
        assert centre["hat"] < centre["backpack"] < centre["shorts"] < centre["boots"]
        assert boxes["glasses"][2] - boxes["glasses"][0] < 0.25
    labels = np.array([[int(r[a]) for a in synth.ATTRIBUTES] for r in rows])
    assert np.all((labels.mean(0) > 0.05) & (labels.mean(0) < 0.95))
    assert not np.any(labels[:, synth.ATTRIBUTES.index("skirt")] & labels[:, synth.ATTRIBUTES.index("shorts")])


def test_converts_with_csv_format(synth_dir, tmp_path):
    m = convert(ConvertConfig(format="csv", annotations=os.path.join(synth_dir, "annotations.csv"),
                              images_dir=synth_dir, output_dir=str(tmp_path / "r"), show_progress=False)).manifest
    assert list(m["splits"]) == ["train", "val", "test"] and m["num_skipped"] == 0
    assert m["attributes"] == list(synth.ATTRIBUTES)


def test_fast_enough(tmp_path):
    start = time.monotonic()
    synth.generate(synth.SynthConfig(str(tmp_path / "f"), num_images=200, seed=0))
    assert time.monotonic() - start < 6.0  # 2,000 in well under a minute.


def test_cue_is_drawn_in_its_region():
    """The hat's colour appears inside the hat region when the hat is on."""
    for i in range(40):
        image, labels, regions = synth.render_pedestrian(np.random.default_rng([9, i]), distractors=False)
        if not labels["hat"]:
            continue
        arr = np.asarray(image).astype(int)
        h, w = arr.shape[:2]
        y1, x1, y2, x2 = regions["hat"]
        crop = arr[int(y1 * h): int(np.ceil(y2 * h)), int(x1 * w): int(np.ceil(x2 * w))]
        red = (crop[..., 0] > 150) & (crop[..., 1] < 110) & (crop[..., 2] < 90)
        assert red.sum() > 0.1 * crop.shape[0] * crop.shape[1]
        return
    pytest.fail("no hat in 40 draws")


def _red(arr):
    """The hat colours (red to orange, saturated, bright), JPEG-free."""
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    return (r > 190) & (g < 0.62 * r) & (b < 0.35 * r)


def test_crowd_neighbours_carry_cues_at_the_same_heights():
    """Other people cut by the border wear hats at head height; the labelled person's cue stays whole."""
    neighbour_hats = 0
    for i in range(60):
        image, labels, regions = synth.render_pedestrian(np.random.default_rng([11, i]))
        arr = np.asarray(image).astype(int)
        h, w = arr.shape[:2]
        y1, x1, y2, x2 = regions["hat"]
        if labels["hat"]:  # drawn over the neighbours, so still there
            crop = arr[int(y1 * h): int(np.ceil(y2 * h)), int(x1 * w): int(np.ceil(x2 * w))]
            assert _red(crop).sum() > 0.1 * crop.shape[0] * crop.shape[1], i
        band = _red(arr[: int(np.ceil(y2 * h))])  # head height
        band[:, int(x1 * w): int(np.ceil(x2 * w))] = False  # outside the labelled head
        neighbour_hats += int(band.sum() > 20)
    assert 8 <= neighbour_hats <= 40, neighbour_hats


def _person_frames(crop, n=200):
    """(head centre y, head centre x, person top, feet bottom) of n draws, normalized."""
    out = []
    for i in range(n):
        _, _, regions = synth.render_pedestrian(np.random.default_rng([21, i]), crop=crop)
        y1, x1, y2, x2 = regions["glasses"]  # the head box
        out.append(((y1 + y2) / 2, (x1 + x2) / 2, regions["hat"][0], regions["boots"][2]))
    return np.array(out)


def test_tight_crops_frame_the_person_like_annotated_boxes():
    """tight: the person fills the crop from near the top, centred; loose: anywhere in more slack."""
    tight, loose = _person_frames("tight"), _person_frames("loose")
    assert tight[:, 2].max() < 0.06 and tight[:, 3].min() > 0.85  # top near the border, feet low
    assert np.all(tight[:, 3] <= 1.0)
    assert abs(tight[:, 1].mean() - 0.5) < 0.02
    # The head moves about half as much (or less) from crop to crop.
    assert tight[:, 0].std() < 0.6 * loose[:, 0].std()
    assert tight[:, 1].std() < 0.7 * loose[:, 1].std()
    assert loose[:, 2].max() > 0.12


def test_loose_crop_regions_are_pinned():
    """crop="loose" draws the person at pinned regions (seed 0, image 0): its data does not move."""
    _, _, regions = synth.render_pedestrian(np.random.default_rng([0, 0]), crop="loose")
    assert regions["hat"] == [0.0646, 0.4421, 0.2157, 0.7673]
    assert regions["backpack"] == [0.2209, 0.1699, 0.5214, 1.0]
    assert regions["boots"] == [0.7533, 0.3406, 0.938, 0.8312]


#: sha256 of render_pedestrian's RGB bytes, labels and regions over 18 draws
#: (seeds [5, 0..5]; default, no distractors, loose with colours): alm-synth's
#: images do not move when the renderer gains options.
RGB_DRAWS_SHA256 = "803831901f592aa521b12df026a1dcd291a99b1f163446fdda42d8f5be211397"
_DRAW_OPTIONS = (dict(), dict(distractors=False), dict(crop="loose", colours=True))


def test_rgb_draws_are_pinned():
    h = hashlib.sha256()
    for i in range(6):
        for options in _DRAW_OPTIONS:
            image, labels, regions = synth.render_pedestrian(np.random.default_rng([5, i]), **options)
            h.update(image.tobytes())
            h.update(repr(sorted(labels.items())).encode())
            h.update(repr(sorted(regions.items())).encode())
    assert h.hexdigest() == RGB_DRAWS_SHA256


def test_transparent_draws_the_same_person_on_a_transparent_layer():
    for i in range(4):
        for options in _DRAW_OPTIONS:
            rgb, labels, regions = synth.render_pedestrian(np.random.default_rng([5, i]), **options)
            rgba, labels_t, regions_t = synth.render_pedestrian(np.random.default_rng([5, i]), transparent=True,
                                                                **options)
            assert rgba.mode == "RGBA" and rgba.size == rgb.size
            assert labels_t == labels and regions_t == regions
            pixels = np.asarray(rgba)
            person = pixels[..., 3] > 0
            assert set(np.unique(pixels[..., 3])) == {0, 255}  # a hard silhouette
            assert 0.1 < person.mean() < 0.95
            assert (pixels[..., :3][person] == np.asarray(rgb)[person]).all()  # the same strokes


def test_bad_crop_is_refused(tmp_path):
    with pytest.raises(ValueError, match="crop must be one of tight, loose. Received: crop='wide'"):
        synth.SynthConfig(str(tmp_path / "x"), num_images=1, crop="wide")


def test_attribute_tables_do_not_import_the_renderer():
    """schemas holds alm-synth's attribute list without importing the Pillow renderer."""
    import ast

    from alm_tf.data import schemas, synth_attributes

    def imported(module):
        tree = ast.parse(open(module.__file__, encoding="utf-8").read())
        return {f"{node.module}.{a.name}" if node.module else a.name
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names}

    assert "alm_tf.data.synth" not in imported(schemas)
    assert not {name for name in imported(synth_attributes) if name != "__future__.annotations"}
    assert schemas.ATTRIBUTE_GROUPS["synth"][0] is synth.ATTRIBUTES is synth_attributes.ATTRIBUTES
