"""Clothing colours: RAP / PETA colour groups, synthetic colours on request, searched by colour."""

import csv
import json
import os

import numpy as np
import pytest
from tests.search import search_folders as sf
from tests.cli_helpers import run_main
from PIL import Image

from alm_tf import groups as groups_lib
from alm_tf import search
from alm_tf.data import schemas, synth


def test_rap_and_peta_colours_become_upper_and_lower_color_groups():
    rap = schemas.RAP_ATTRIBUTES + ("up-Red", "up-Black", "low-Blue", "faceFront")
    groups = groups_lib.infer(rap, "rap")
    by_name = {g.name: g for g in groups.groups}
    assert by_name["upper_color"].values == ("black", "red")  # the data set's order, the colours it has
    assert by_name["lower_color"].attributes == ("low-Blue",)
    assert "faceFront" in groups.ungrouped
    peta = schemas.PETA_ATTRIBUTES + ("upperBodyRed", "lowerBodyGrey")
    names = [g.name for g in groups_lib.infer(peta, "peta").groups]
    assert "upper_color" in names and "lower_color" in names
    # The paper's lists have no colours, and keep their groups as before.
    assert "upper_color" not in groups_lib.infer(schemas.RAP_ATTRIBUTES).csv_columns
    assert groups_lib.infer(schemas.PETA_ATTRIBUTES).groups == schemas.PETA_GROUPS


def test_synthetic_colours_on_request(tmp_path):
    synth.generate(synth.SynthConfig(output_dir=str(tmp_path), num_images=12, seed=0, colours=True))
    with open(tmp_path / "annotations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[2:] == list(synth.attributes(colours=True))
    for row in rows:
        assert sum(int(row[f"upper_{c}"]) for c in synth.CLOTHING_COLOURS) == 1
        assert (row["upper_black"] == "1") == (row["dark_clothing"] == "1")
    groups = groups_lib.infer(synth.attributes(colours=True))
    assert groups.source == "synth" and "upper_color" in groups.csv_columns
    # The torso's middle pixel is about the labelled colour (no distractor covers it).
    row = next(r for r in rows if r["backpack"] == "0")
    image = np.asarray(Image.open(os.path.join(tmp_path, row["image"])).convert("RGB")).astype(int)
    colour = next(c for c in synth.CLOTHING_COLOURS if row[f"upper_{c}"] == "1")
    h, w = image.shape[:2]
    patch = image[int(h * 0.3):int(h * 0.36), w // 2 - 1:w // 2 + 2].reshape(-1, 3).mean(axis=0)
    assert np.abs(patch - synth.CLOTHING_COLOURS[colour]).max() < 60, (colour, patch)


def test_search_by_colour(tmp_path):
    attributes = synth.attributes(colours=True)
    description = sf.model(attributes=attributes, groups=list(synth.GROUPS + synth.COLOUR_GROUPS))
    p = np.full((3, len(attributes)), 0.05)
    k = attributes.index
    p[0, k("upper_red")], p[1, k("upper_black")], p[2, k("upper_green")] = 0.9, 0.8, 0.95
    search.index_folders([sf.write_folder(str(tmp_path / "a"), p, model_description=description)],
                         str(tmp_path / "idx"))
    index = search.Index(str(tmp_path / "idx"))
    frame = index.search("upper_color=red|black", top=3)
    assert list(frame["track_id"][:2]) == [1, 2] and list(frame["upper_color"][:2]) == ["red", "black"]
    strict = index.search("upper_color=red", strict=True)
    assert list(strict["track_id"]) == [1]
    with pytest.raises(search.SearchError, match="unknown value 'orange'"):
        index.search("upper_color=orange")


def _peta_folder(root):
    """A two-person PETA folder whose labels name a clothing colour."""
    archive = root / "PETA dataset" / "3DPeS" / "archive"
    archive.mkdir(parents=True)
    for name in ("0001_a.png", "0002_a.png"):
        Image.new("RGB", (6, 8), (90, 90, 90)).save(archive / name)
    (archive / "Label.txt").write_text("1 personalLess30 upperBodyRed\n0002 carryingBackpack lowerBodyBlack\n")
    return str(root / "PETA dataset")


@pytest.mark.parametrize("flag", ["--attribute_set=all", "--all_attributes"])
def test_convert_keeps_peta_colours_with_attribute_set_all(tmp_path, flag):
    images = _peta_folder(tmp_path)
    out = tmp_path / "records"
    args = ["--format=peta", f"--annotations={images}", f"--images_dir={images}", f"--output_dir={out}",
            "--workers=0", "--noprogress"]
    code, _, err = run_main("pipelines.convert", args + [flag], "alm-convert")
    assert code == 0, err
    attributes = tuple(json.load(open(out / "manifest.json"))["attributes"])
    assert sorted(attributes[35:]) == ["lowerBodyBlack", "upperBodyRed"]
    names = [g.name for g in groups_lib.infer(attributes, "peta").groups]
    assert "upper_color" in names and "lower_color" in names


def test_convert_paper_set_by_default_and_contradiction_refused(tmp_path):
    images = _peta_folder(tmp_path)
    args = ["--format=peta", f"--annotations={images}", f"--images_dir={images}", "--workers=0", "--noprogress"]
    code, _, err = run_main("pipelines.convert", args + [f"--output_dir={tmp_path / 'paper'}"], "alm-convert")
    assert code == 0, err
    assert json.load(open(tmp_path / "paper" / "manifest.json"))["attributes"] == list(schemas.PETA_ATTRIBUTES)
    code, _, err = run_main("pipelines.convert", args + [f"--output_dir={tmp_path / 'x'}", "--all_attributes",
                                                         "--attribute_set=paper"], "alm-convert")
    assert code == 1 and err.count("\n") == 1 and "--attribute_set=paper" in err
    assert not (tmp_path / "x").exists()


def test_synth_binaries_colours_flag(tmp_path):
    code, _, err = run_main("pipelines.synth", [f"--output_dir={tmp_path / 'd'}", "--num_images=3", "--colours"],
                            "alm-synth")
    assert code == 0, err
    with open(tmp_path / "d" / "annotations.csv", newline="") as f:
        assert next(csv.reader(f))[2:] == list(synth.attributes(colours=True))
    code, _, err = run_main("pipelines.synth_frames", [f"--output_dir={tmp_path / 'f'}", "--num_frames=3",
                                                       "--num_people=2", "--colours"], "alm-synth-frames")
    assert code == 0, err
    people = json.load(open(tmp_path / "f" / "people.json"))
    assert people["attributes"] == list(synth.attributes(colours=True))
    for track in people["tracks"].values():
        assert sum(track["labels"][f"upper_{c}"] for c in synth.CLOTHING_COLOURS) == 1
