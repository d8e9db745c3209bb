"""From footage to a results page: two synthetic camera videos -> alm-predict
--video (a constant detector file, or the default detector; a tracker; a tiny
model) -> alm-index -> alm-search; the rows, their order and the page."""

import csv
import math

import pandas as pd
import pytest

from alm_tf.testing import detector_files
from alm_tf.testing import mini_model
from tests.cli_helpers import run_main
from tests.serving import serving_helpers

HEIGHT, WIDTH = 120, 160
#: Two people the constant detector answers on every frame (x1, y1, x2, y2).
PEOPLE = [[10, 10, 60, 110], [95, 15, 145, 115]]
CAMERAS = ("gate", "hall")
QUERY = "female -hat"


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Runs the whole chain once; returns its folders."""
    root = tmp_path_factory.mktemp("footage")
    model = mini_model.mini_alm_model(num_attributes=len(serving_helpers.ATTRIBUTES),
                                      image_size=serving_helpers.INPUT_SHAPE[:2], seed=1)
    serving_helpers._perturb_boxes(model)
    model_dir = str(root / "model")
    serving_helpers.write_model_dir(model_dir, model, serving_helpers.ATTRIBUTES, serving_helpers.THRESHOLDS,
                                    serving_helpers.GROUPS)
    table = detector_files.yolo_table(PEOPLE, [[0.9], [0.8]], (HEIGHT, WIDTH))
    onnx = detector_files.yolo_onnx(root / "person.onnx", table)
    people = []
    for seed, camera in enumerate(CAMERAS):
        seq = root / f"seq_{camera}"
        code, _, err = run_main("pipelines.synth_frames", [
            f"--output_dir={seq}", "--num_frames=5", "--num_people=2", f"--frame_height={HEIGHT}",
            f"--frame_width={WIDTH}", "--person_height_min=40", "--person_height_max=80", f"--seed={seed}",
            "--write_video"], "alm-synth-frames")
        assert code == 0, err
        out = root / f"people_{camera}"
        code, _, err = run_main("pipelines.predict", [
            "--progress=false", f"--model={model_dir}", f"--video={seq / 'street.mp4'}", f"--detector={onnx}",
            "--tracker=bytetrack", "--track_min_frames=1", f"--camera={camera}", "--no_video",
            f"--output_dir={out}"], "alm-predict")
        assert code == 0, err
        people.append(out)
    index = root / "idx"
    code, out, err = run_main("pipelines.index", [f"--inputs={people[0]},{people[1]}", f"--index={index}"],
                              "alm-index")
    assert code == 0, err
    for ext in ("csv", "html"):
        code, _, err = run_main("pipelines.search", [f"--index={index}", f"--query={QUERY}",
                                                     f"--output={root / ('results.' + ext)}"], "alm-search")
        assert code == 0, err
    return {"root": root, "people": people, "index_output": out}


def _expected(people):
    """(camera, id, score) of every track from its people folder, best first (joint log-probability)."""
    rows = []
    for folder in people:
        with open(folder / "tracks.csv", newline="") as f:
            for row in csv.DictReader(f):
                p_female, p_hat = float(row["female_prob"]), float(row["hat_prob"])
                rows.append((row["camera"], int(row["id"]), math.log(p_female) + math.log(1 - p_hat),
                             int(row["num_frames"])))
    return sorted(rows, key=lambda r: (-r[2], -r[3]))


def test_footage_to_ranked_rows(searched):
    assert "indexed 4 tracks" in searched["index_output"]
    frame = pd.read_csv(searched["root"] / "results.csv")
    expected = _expected(searched["people"])
    assert len(frame) == 4 and set(frame["camera"]) == set(CAMERAS)
    assert list(zip(frame["camera"], frame["track_id"])) == [(c, i) for c, i, _, _ in expected]
    assert list(frame["score"]) == pytest.approx([s for _, _, s, _ in expected], abs=1e-4)
    assert (frame["end_time"] > frame["start_time"]).all()


def test_footage_results_page(searched):
    page = (searched["root"] / "results.html").read_text()
    assert page.count("<img") == 4 and page.count("data:image/jpeg;base64,") == 4
    assert QUERY in page and all(camera in page for camera in CAMERAS)
    # backpack has no group: its label reads yes / no; no answer is left blank.
    assert page.count("<dt>backpack</dt><dd>yes</dd>") + page.count("<dt>backpack</dt><dd>no</dd>") == 4
    assert "<dd></dd>" not in page
    cards = [page.index(f"<b>#{rank}</b> {camera} · track {track}")
             for rank, (camera, track, _, _) in enumerate(_expected(searched["people"]), 1)]
    assert cards == sorted(cards)  # the cards in rank order


def test_default_detector_footage_to_index_and_search(tmp_path):
    """No detector flag: alm-predict's default detector and tracker find the drawn people of two
    camera videos; their tracks reach the index and alm-search returns each of them."""
    from alm_tf.people import mot_metrics

    model = mini_model.mini_alm_model(num_attributes=len(serving_helpers.ATTRIBUTES),
                                      image_size=serving_helpers.INPUT_SHAPE[:2], seed=1)
    model_dir = str(tmp_path / "model")
    serving_helpers.write_model_dir(model_dir, model, serving_helpers.ATTRIBUTES, serving_helpers.THRESHOLDS,
                                    serving_helpers.GROUPS)
    people, found = [], 0
    for seed, camera in enumerate(CAMERAS):
        seq = tmp_path / f"seq_{camera}"
        code, _, err = run_main("pipelines.synth_frames", [
            f"--output_dir={seq}", "--num_frames=6", "--num_people=1", "--frame_height=240",
            "--frame_width=320", "--person_height_min=120", "--person_height_max=140", "--speed=2",
            f"--seed={seed}", "--write_video"], "alm-synth-frames")
        assert code == 0, err
        out = tmp_path / f"people_{camera}"
        code, _, err = run_main("pipelines.predict", [
            "--progress=false", f"--model={model_dir}", f"--video={seq / 'street.mp4'}", f"--camera={camera}",
            "--no_video", f"--output_dir={out}"], "alm-predict")
        assert code == 0, err
        truth = mot_metrics.read_mot(str(seq / "gt" / "gt.txt"))
        tracked = mot_metrics.mot_metrics(truth, mot_metrics.read_mot(str(out / "tracks.txt")))
        assert tracked["recall"] >= 0.5, (camera, tracked)
        with open(out / "tracks.csv", newline="") as f:
            found += len(list(csv.DictReader(f)))
        people.append(out)
    index = tmp_path / "idx"
    code, _, err = run_main("pipelines.index", [f"--inputs={people[0]},{people[1]}", f"--index={index}"],
                            "alm-index")
    assert code == 0, err
    code, _, err = run_main("pipelines.search", [f"--index={index}", f"--query={QUERY}",
                                                 f"--output={tmp_path / 'results.csv'}"], "alm-search")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "results.csv")
    assert len(frame) == found >= 2 and set(frame["camera"]) == set(CAMERAS)
