"""alm-predict on camera frames: --boxes and --tracks over a synthetic
sequence (frames folder and video), answers equal to the API and the
client, bad input (one line, exit 1, nothing written)."""

import builtins
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from alm_tf.inference import images as prediction
from alm_tf.people import run as people_prediction
from alm_tf.people import synth_frames, video
from alm_tf.serving import client
from tests.cli_helpers import run_main
from tests.serving import serving_helpers as sh


def _main(args, capsys):
    return run_main("pipelines.predict", ["--progress=false", *args], "alm-predict")

def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequence")
    return synth_frames.generate_frames(synth_frames.FramesConfig(
        str(root / "seq"), num_frames=6, num_people=3, height=120, width=160, min_person_height=40,
        max_person_height=80, seed=5))


@pytest.fixture
def fast_model(saved, monkeypatch):
    """alm-predict's loader answers with the session's loaded export (already
    loaded once; the first CLI test loads it for real)."""
    predictor = prediction._loaded_predictor(saved)
    monkeypatch.setattr(prediction, "load_image_predictor", lambda *a, **k: predictor)
    return predictor


def test_tracks_one_row_per_track_deterministic(exported, saved, sequence, tmp_path, capsys):
    out = tmp_path / "V"
    code, stdout, err = _main([f"--model={exported.saved_model}", f"--images={sequence['images_dir']}",
                               f"--tracks={sequence['gt']}", "--crops_per_track=0", f"--output_dir={out}"],
                              capsys)
    assert code == 0, err
    assert "3 tracks" in stdout
    assert sorted(os.listdir(out)) == ["boxes.csv", "people.mp4", "pictures", "predictions.jsonl", "run.json",
                                       "thumbnails", "tracks.csv", "tracks.txt"]
    boxes, tracks = _rows(out / "boxes.csv"), _rows(out / "tracks.csv")
    assert len(boxes) == sequence["num_boxes"] and [t["id"] for t in tracks] == ["1", "2", "3"]
    assert list(tracks[0])[:9] == ["id", "first_frame", "last_frame", "num_frames", "camera", "start_time",
                                   "end_time", "head", "gender"]
    for track in tracks:  # one answer per track: the mean of its boxes' probabilities
        mine = [b for b in boxes if b["id"] == track["id"]]
        assert int(track["num_frames"]) == len(mine)
        for m, name in enumerate(sh.ATTRIBUTES):
            mean = np.mean([float(b[f"{name}_prob"]) for b in mine])
            assert abs(float(track[f"{name}_prob"]) - mean) < 2e-6
            assert int(track[name]) == int(float(track[f"{name}_prob"]) > sh.THRESHOLDS[m])
    records = _jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in records] == [1, 2, 3]
    assert set(records[0]["answers"]) == {"head", "gender", "backpack"} and records[0]["per_frame"] == {}
    assert len(os.listdir(out / "pictures")) == 6
    # the library, again, with the same model: the same bytes (deterministic)
    config = people_prediction.PeopleConfig("tracks", sequence["gt"], str(tmp_path / "again"),
                                            images=tuple(sorted(sequence["frames"])), crops_per_track=None,
                                            images_root=sequence["images_dir"], pictures=False, progress=False)
    people_prediction.predict_people(prediction._loaded_predictor(saved), config, report=lambda line: None)
    for name in ("boxes.csv", "tracks.csv", "predictions.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_boxes_answers_equal_api_and_client(loaded, saved, exported, sequence, fast_model, tmp_path, capsys):
    """--boxes with a plain CSV and per-request thresholds: the same answers as
    LoadedModel.answers and the REST client with the exported groups."""
    frames = sorted(sequence["frames"])[:2]
    boxes_csv = tmp_path / "boxes.csv"
    boxes_csv.write_text("image,x1,y1,x2,y2,score\n"
                         f"{os.path.basename(frames[0])},10,5,60,100,0.9\n"
                         f"{os.path.basename(frames[1])},-20,30,50,130,0.8\n"  # reaches outside: clipped
                         f"{os.path.basename(frames[1])},90,10,150,110,0.7\n")
    out = tmp_path / "V"
    code, stdout, err = _main([f"--model={exported.saved_model}", f"--images={sequence['images_dir']}",
                               f"--boxes={boxes_csv}", f"--output_dir={out}", "--thresholds=female=0.2,hat=0.9",
                               "--pictures=false"], capsys)
    assert code == 0, err
    assert "clipped 1 of 3 boxes to their frames (first: boxes.csv:3" in err
    rows, records = _rows(out / "boxes.csv"), _jsonl(out / "predictions.jsonl")
    assert [r["clipped"] for r in rows] == ["0", "1", "0"] and rows[1]["x1"] == "0" and rows[1]["y2"] == "120"
    assert [r["box"] for r in records] == [[10, 5, 60, 100], [0, 30, 50, 120], [90, 10, 150, 110]]
    thresholds = {"female": 0.2, "hat": 0.9}
    encoded = [open(f, "rb").read() for f in frames]
    normalized = np.array([[5 / 120, 10 / 160, 100 / 120, 60 / 160], [30 / 120, 0, 1, 50 / 160],
                           [10 / 120, 90 / 160, 110 / 120, 150 / 160]], np.float32)
    indices = [0, 1, 1]
    api = saved.answers(saved.predict_boxes(encoded, normalized, indices), thresholds)
    with sh.RestServer(loaded) as server:
        remote = client.predict_boxes_rest(encoded, normalized, indices, sh.ATTRIBUTES, url=server.url,
                                           groups=client.read_groups(exported.saved_model),
                                           thresholds=thresholds)
    assert [r["answers"] for r in records] == api == [p.answers for p in remote]
    assert [r["gender"] for r in rows] == [a["gender"] for a in api]


def test_tracks_from_a_video_and_ema(exported, sequence, fast_model, tmp_path, capsys):
    pytest.importorskip("av")

    path = video.write_video(str(tmp_path / "seq.mp4"),
                             [np.asarray(Image.open(f)) for f in sorted(sequence["frames"])])
    assert video.count_frames(path) == 6
    out = tmp_path / "V"
    code, stdout, err = _main([f"--video={path}", f"--tracks={sequence['gt']}", f"--output_dir={out}",
                               f"--model={exported.saved_model}", "--aggregate=ema", "--smoothing=0.5", "--min_track_length=5",
                               "--per_frame=gender", "--max_pictures=2", "--crops_per_track=0"], capsys)
    assert code == 0, err
    tracks = _rows(out / "tracks.csv")
    boxes = _rows(out / "boxes.csv")
    lengths = {i: sum(b["id"] == i for b in boxes) for i in ("1", "2", "3")}
    assert [t["id"] for t in tracks] == [i for i, n in lengths.items() if n >= 5]
    assert all("@" in t["gender"] and t["female_prob"] == "" for t in tracks)  # per frame: runs
    assert sorted(os.listdir(out / "pictures")) == ["000001.png", "000002.png"]
    assert all(b["image"] == "" for b in boxes)


def test_missing_pyav_is_one_line(sequence, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    (tmp_path / "v.mp4").write_bytes(b"x")
    code, _, err = _main([f"--model={sequence['gt']}", "--video=" + str(tmp_path / "v.mp4"), f"--tracks={sequence['gt']}",
                          f"--output_dir={tmp_path / 'V'}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "pip install 'alm-tf[video]'" in lines[0]
    assert not os.path.exists(tmp_path / "V")


@pytest.mark.parametrize("text,needle", [
    ("1,1,10,10,20,40\n99,1,10,10,20,40\n", "det.txt:2: frame 99 does not exist (--images has 6 frames"),
    ("1,1,10,10,20,40,1,1,1,7,7\n", "det.txt:1: 11 columns; a MOT file has 6 to 10"),
    ("frame,id,x1,y1,x2,y2,speed\n1,1,1,1,5,5,3\n", "unknown column 'speed'"),
    ("1,1,10,10,0,40\n", "det.txt:1: empty box"),
    ("1,-1,10,10,20,40\n", "needs a track id >= 0"),
])
def test_bad_tracks_files_one_line_nothing_written(sequence, tmp_path, capsys, text, needle):
    (tmp_path / "det.txt").write_text(text)
    code, _, err = _main([f"--model={sequence['gt']}", f"--images={sequence['images_dir']}",
                          f"--tracks={tmp_path / 'det.txt'}", f"--output_dir={tmp_path / 'V'}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("alm-predict: error:")
    assert not os.path.exists(tmp_path / "V")


def test_box_outside_its_frame_stops_after_the_model_nothing_written(exported, sequence, fast_model, tmp_path,
                                                                    capsys):
    (tmp_path / "det.txt").write_text("1,-1,10,10,20,40\n2,-1,500,10,20,40\n")
    out = tmp_path / "V"
    out.mkdir()
    code, _, err = _main([f"--model={exported.saved_model}", f"--images={sequence['images_dir']}",
                          f"--boxes={tmp_path / 'det.txt'}", f"--output_dir={out}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert "det.txt:2: the box (x1=500, y1=10, x2=520, y2=50) is empty inside its 160x120 frame 2" in lines[0]
    assert os.listdir(out) == []


@pytest.mark.parametrize("args,needle", [
    (["--boxes=B", "--tracks=T"], "give one of --boxes"),
    (["--tracks=T", "--video=V.mp4", "--images=I"], "one of --images and --video"),
    (["--boxes=B"], "one of --images and --video"),
    (["--boxes=/no/such.txt", "--images=I"], "--boxes not found: '/no/such.txt'"),
    (["--images=I", "--aggregate=ema"], "--aggregate applies to --tracks"),
])
def test_bad_flags_one_line(args, needle, sequence, capsys):
    args = [a.replace("=I", f"={sequence['images_dir']}") for a in args]
    code, _, err = _main([f"--model={sequence['images_dir']}", "--output_dir=/tmp/never-written", *args], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and needle in lines[0], err


def test_tracks_through_a_tf_serving_server(loaded, saved, sequence, tmp_path, capsys):
    """--server: frames + boxes go to predict_boxes over gRPC (row layout);
    the names, thresholds and groups come from the metadata signature."""
    with sh.GrpcServer(loaded) as server:
        code, _, err = _main([f"--server={server.target}", f"--images={sequence['images_dir']}",
                              f"--tracks={sequence['gt']}", f"--output_dir={tmp_path / 'V'}",
                              "--pictures=false"], capsys)
        signatures = {r.model_spec.signature_name for r in server.requests}
    assert code == 0, err
    assert signatures == {"metadata", "predict_boxes"}
    config = people_prediction.PeopleConfig("tracks", sequence["gt"], str(tmp_path / "local"),
                                            images=tuple(sorted(sequence["frames"])),
                                            images_root=sequence["images_dir"], pictures=False, progress=False)
    people_prediction.predict_people(prediction._loaded_predictor(saved), config, report=lambda line: None)
    for name in ("tracks.csv", "predictions.jsonl"):
        assert (tmp_path / "V" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
