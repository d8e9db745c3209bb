"""alm-predict on footage without a boxes file: detector -> tracker -> model per
track, the people folder's files (tracks.csv with camera and times,
predictions.jsonl, tracks.txt, thumbnails, people.mp4, run.json), bad input."""

import csv
import json
import os

import numpy as np
import pytest

from alm_tf.testing import detector_files
from alm_tf.inference import images as prediction
from alm_tf.people import video
from alm_tf.people import synth_frames
from tests.cli_helpers import run_main

FPS = 5
HEIGHT, WIDTH = 120, 160
PERSON = [40, 20, 90, 110]  # the fixed box the test detector answers on every frame


MODEL = os.path.abspath(__file__)  # any existing path: the loader is replaced by `fast_model`


def _main(args):
    return run_main("pipelines.predict", ["--progress=false", *args], "alm-predict")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    root = tmp_path_factory.mktemp("street")
    info = synth_frames.generate_frames(synth_frames.FramesConfig(
        str(root / "seq"), num_frames=6, num_people=2, height=HEIGHT, width=WIDTH, min_person_height=40,
        max_person_height=80, seed=3))
    frames = [np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB"))
              for p in info["frames"]]
    info["video"] = video.write_video(str(root / "street.mp4"), frames, fps=FPS)
    table = detector_files.yolo_table([PERSON], [[0.9]], (HEIGHT, WIDTH))
    info["onnx"] = detector_files.yolo_onnx(root / "person.onnx", table)
    info["nobody"] = detector_files.yolo_onnx(root / "nobody.onnx", table * [[[1], [1], [1], [1], [0]]])
    return info


@pytest.fixture
def fast_model(saved, monkeypatch):
    predictor = prediction._loaded_predictor(saved)
    monkeypatch.setattr(prediction, "load_image_predictor", lambda *a, **k: predictor)
    return predictor


def test_video_to_people_folder(street, fast_model, tmp_path):
    out = tmp_path / "people"
    code, stdout, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--detector={street['onnx']}",
                               "--tracker=bytetrack", "--track_min_frames=1", f"--output_dir={out}"])
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["boxes.csv", "people.mp4", "pictures", "predictions.jsonl", "run.json",
                                       "thumbnails", "tracks.csv", "tracks.txt"]
    tracks = _rows(out / "tracks.csv")
    assert len(tracks) == 1 and tracks[0]["camera"] == "street"
    assert float(tracks[0]["start_time"]) == pytest.approx((int(tracks[0]["first_frame"]) - 1) / FPS)
    assert float(tracks[0]["end_time"]) == pytest.approx(5 / FPS) and tracks[0]["last_frame"] == "6"
    record = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert record["camera"] == "street" and record["end_time"] == pytest.approx(1.0) and record["answers"]
    mot = [line.split(",") for line in (out / "tracks.txt").read_text().splitlines()]
    assert mot[-1][0] == "6" and mot[0][1] == tracks[0]["id"] and mot[0][7:] == ["-1", "-1", "-1"]
    assert [float(v) for v in mot[0][2:6]] == pytest.approx([40, 20, 50, 90], abs=0.01)
    assert os.listdir(out / "thumbnails") == [f"{tracks[0]['id']}.jpg"]
    assert video.count_frames(str(out / "people.mp4")) == 6
    run = json.loads((out / "run.json").read_text())
    assert run["camera"] == "street" and run["source"] == street["video"] and run["fps"] == FPS
    assert run["frame_size"] == [HEIGHT, WIDTH] and run["num_frames"] == 6 and run["tracker"] == "bytetrack"
    assert run["detector"] == street["onnx"] and run["model"]["attributes"] == list(fast_model.attributes)
    assert run["model"]["groups"]


def test_frames_with_nobody_write_empty_tables(street, fast_model, tmp_path):
    out = tmp_path / "people"
    code, stdout, err = _main([f"--model={MODEL}", f"--images={street['images_dir']}", f"--detector={street['nobody']}",
                               "--fps=10", "--camera=door", "--no_video", f"--output_dir={out}"])
    assert code == 0, err
    assert _rows(out / "tracks.csv") == [] and (out / "tracks.txt").read_text() == ""
    assert "people.mp4" not in os.listdir(out)
    run = json.loads((out / "run.json").read_text())
    assert run["camera"] == "door" and run["fps"] == 10 and run["num_frames"] == 6


def test_video_with_nobody_writes_empty_tables(street, fast_model, tmp_path):
    out = tmp_path / "people"
    code, _, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--detector={street['nobody']}",
                          "--no_video", f"--output_dir={out}"])
    assert code == 0, err
    assert _rows(out / "tracks.csv") == [] and (out / "tracks.txt").read_text() == ""
    assert json.loads((out / "run.json").read_text())["num_frames"] == 6


def test_tracks_file_run_names_camera_from_frames_folder(street, fast_model, tmp_path):
    out = tmp_path / "people"
    code, _, err = _main([f"--model={MODEL}", f"--images={street['images_dir']}", f"--tracks={street['gt']}",
                          "--no_video", f"--output_dir={out}"])
    assert code == 0, err
    tracks = _rows(out / "tracks.csv")
    assert {t["camera"] for t in tracks} == {"seq"} and json.loads((out / "run.json").read_text())["tracker"] is None
    assert len(os.listdir(out / "thumbnails")) == len(tracks)


@pytest.mark.parametrize("args, words", [
    (["--detector=missing.onnx"], "--detector not found"),
    (["--detector=hog", "--person_class=1"], "person_class applies"),
    (["--detector_upscale=2", "--detector={onnx}"], "hog detector only"),
    (["--hog_model=inria", "--detector={onnx}"], "hog_model applies to the hog detector only"),
])
def test_bad_footage_flags_one_line(street, fast_model, tmp_path, args, words):
    out = tmp_path / "people"
    args = [a.format(onnx=street["onnx"]) for a in args]
    code, _, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--output_dir={out}", *args])
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_bad_video_and_wrong_person_class(street, fast_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "people"
    code, _, err = _main([f"--model={MODEL}", f"--video={bad}", f"--output_dir={out}"])
    assert code == 1 and "bad.mp4" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--detector={street['onnx']}",
                          "--person_class=5", f"--output_dir={out}"])
    assert code == 1 and "--person_class=5 does not exist" in err and not out.exists()
    code, _, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--tracks={street['gt']}",
                          "--detector=hog", f"--output_dir={out}"])
    assert code == 1 and "--detector applies without --boxes and --tracks" in err
    code, _, err = _main([f"--model={MODEL}", f"--video={street['video']}", f"--output_dir={street['video']}"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and os.path.getsize(street["video"]) > 0


def test_crops_per_track_answers_fewer_boxes_and_keeps_every_box_in_tracks_txt(street, fast_model, tmp_path):
    out = tmp_path / "people"
    code, _, err = _main([f"--model={MODEL}", f"--images={street['images_dir']}", f"--tracks={street['gt']}",
                          "--crops_per_track=2", "--no_video", f"--output_dir={out}"])
    assert code == 0, err
    tracks, boxes = _rows(out / "tracks.csv"), _rows(out / "boxes.csv")
    assert len(boxes) == 2 * len(tracks) and sum(int(t["num_frames"]) for t in tracks) == street["num_boxes"]
    assert {b["frame"] for b in boxes} != {t["first_frame"] for t in tracks} | {t["last_frame"] for t in tracks}
    assert len((out / "tracks.txt").read_text().splitlines()) == street["num_boxes"]
    code, _, err = _main([f"--model={MODEL}", f"--images={street['images_dir']}", f"--boxes={street['det']}",
                          "--crops_per_track=2", f"--output_dir={tmp_path / 'boxes'}"])
    assert code == 1 and "--crops_per_track applies to --tracks" in err
