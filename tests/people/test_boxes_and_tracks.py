"""Box files (alm_tf.people.detections), crops (alm_tf.preprocessing.crops), track aggregation
(alm_tf.people.tracks) and synthetic sequences (alm_tf.people.synth_frames): no model."""

import importlib
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from PIL import Image

from alm_tf import groups as g
from alm_tf.people import detections as det
from alm_tf.people import synth_frames, tracks
from alm_tf.preprocessing import crops as people


def _write(tmp_path, text, name="det.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_mot_rows_and_csv_rows(tmp_path):
    found, dropped = det.read_detections(_write(tmp_path, "1,-1,10.5,20,30,40,0.9,-1,-1,-1\n2,3,0,0,5,6\n"))
    assert dropped == 0 and len(found) == 2
    first = found[0]
    assert (first.frame, first.image, first.track_id, first.score) == (1, None, -1, 0.9)
    assert (first.x1, first.y1, first.x2, first.y2) == (10.5, 20, 40.5, 60)
    found, _ = det.read_detections(_write(tmp_path, "image,x1,y1,x2,y2,score\na.jpg,1,2,11,22,0.3\n"
                                                    "b.jpg,0,0,4,4,0.8\n", "boxes.csv"), min_score=0.5)
    assert [d.image for d in found] == ["b.jpg"]
    found, dropped = det.read_detections(_write(tmp_path, "frame,id,x1,y1,x2,y2\n3,7,1,2,3,4\n", "t.csv"),
                                         need_ids=True)
    assert (found[0].frame, found[0].track_id, dropped) == (3, 7, 0)


@pytest.mark.parametrize("text,kwargs,needle", [
    ("1,2,3,4,5\n", {}, "det.txt:1: 5 columns; a MOT file has 6 to 10"),
    ("1,2,3,4,5,6,7,8,9,10,11\n", {}, "11 columns"),
    ("1,2,3,4,x,6\n", {}, "column 'width' is not a number: 'x'"),
    ("0,2,3,4,5,6\n", {}, "frame numbers start at 1"),
    ("1,2,3,4,0,6\n", {}, "det.txt:1: empty box"),
    ("1,-1,3,4,5,6\n", {"need_ids": True}, "needs a track id >= 0"),
    ("1,2,3,4,5,6\n1,2,8,8,5,6\n", {"need_ids": True}, "track 2 has a second box in frame 1"),
    ("image,x1,y1,x2,y2,colour\na,1,1,2,2,red\n", {}, "unknown column 'colour'"),
    ("image,x1,y1,x2\na,1,1,2\n", {}, "needs column 'y2'"),
    ("image,frame,x1,y1,x2,y2\na,1,1,1,2,2\n", {}, "exactly one of image, frame"),
    ("image,x1,y1,x2,y2\na,1,1,2\n", {}, "4 values for 5 columns"),
    ("", {}, "no boxes in the file"),
    ("1,2,3,4,5,6,0.1\n", {"min_score": 0.5}, "no box has a score >= 0.5"),
])
def test_bad_box_files_one_line(tmp_path, text, kwargs, needle):
    with pytest.raises(det.DetectionsError) as info:
        det.read_detections(_write(tmp_path, text), **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_frame_index_numbers_names_and_missing_frames(tmp_path):
    paths = [str(tmp_path / f"{n:06d}.jpg") for n in (1, 2, 5)]
    index = det.FrameIndex(paths, str(tmp_path))
    assert index.by_number == {1: paths[0], 2: paths[1], 5: paths[2]}
    found, _ = det.read_detections(_write(tmp_path, "5,1,0,0,2,2\n3,1,0,0,2,2\n"))
    assert index.path_of(found[0]) == paths[2]
    with pytest.raises(det.DetectionsError, match="frame 3 does not exist"):
        index.path_of(found[1])
    named = det.FrameIndex([str(tmp_path / "b.png"), str(tmp_path / "a.png")], str(tmp_path))
    assert named.by_number == {1: str(tmp_path / "a.png"), 2: str(tmp_path / "b.png")}  # name order
    found, _ = det.read_detections(_write(tmp_path, "image,x1,y1,x2,y2\nb.png,0,0,1,1\nc.png,0,0,1,1\n", "x.csv"))
    assert named.path_of(found[0]) == str(tmp_path / "b.png")
    with pytest.raises(det.DetectionsError, match="image 'c.png' does not exist"):
        named.path_of(found[1])


def test_pixel_rule_matches_pillow_crop_and_the_tf_crop():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    boxes = np.array([[0.1, 0.2, 0.8, 0.7], [0.0, 0.0, 1.0, 1.0], [-0.3, 0.5, 0.4, 1.4],
                      [0.33, 0.333, 0.39, 0.36]], np.float32)
    for box in boxes:
        top, left, bottom, right = people.pixel_boxes(box[None], 37, 53)[0]
        pillow = np.asarray(Image.fromarray(frame).crop((left, top, right, bottom)))
        np.testing.assert_array_equal(people.crop_array(frame, box), pillow)
        tf_crop = people.to_size(tf.constant(frame), tf.constant(box), 16, 8).numpy()
        np.testing.assert_array_equal(tf_crop, people.crops_from_arrays([frame], box[None], [0], 16, 8)[0])
    assert people.pixel_boxes(people.from_pixels(10, 20, 30, 40, 1080, 1920), 1080, 1920).tolist() == \
        [[20, 10, 40, 30]]
    with pytest.raises(ValueError, match="empty inside its 53x37 frame"):
        people.crop_array(frame, [0.5, 0.5, 0.5, 0.9])


def test_aggregate_mean_and_ema():
    p = np.array([[0.2, 0.9], [0.4, 0.7], [0.9, 0.8]])
    np.testing.assert_allclose(tracks.aggregate(p, "mean"), p.mean(0))
    np.testing.assert_allclose(tracks.aggregate(p, "ema", 0.5), 0.5 * p[2] + 0.25 * p[1] + 0.25 * p[0])
    np.testing.assert_allclose(tracks.aggregate(p, "ema", 1.0), p[2])
    with pytest.raises(ValueError, match="smoothing"):
        tracks.TrackConfig("ema", 0.0)
    with pytest.raises(ValueError, match="aggregation"):
        tracks.TrackConfig("median")
    assert tracks.runs([1, 2, 3, 5], ["a", "a", "b", "b"]) == [
        {"value": "a", "first_frame": 1, "last_frame": 2}, {"value": "b", "first_frame": 3, "last_frame": 5}]
    assert tracks.runs_text(tracks.runs([1, 2, 4], [["x"], ["x", "y"], ["x", "y"]])) == "x@1 x;y@2-4"


def test_aggregate_tracks_per_frame_orientation_and_min_length():
    attributes = ("Female", "Front", "Back", "Hat")
    groups = g.from_description({"groups": [
        {"name": "gender", "kind": "binary", "attributes": ["Female"], "values": ["female", "male"]},
        {"name": "orientation", "kind": "exclusive", "attributes": ["Front", "Back"], "values": ["front", "back"]},
    ]}, attributes)
    # track 7: frames 3, 1, 2 (out of order); track 9: one frame
    ids = [7, 7, 9, 7]
    frames = [3, 1, 1, 2]
    probs = np.array([[0.9, 0.1, 0.8, 0.6], [0.3, 0.9, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5], [0.6, 0.7, 0.1, 0.9]],
                     np.float32)
    labels = (probs > 0.5).astype(np.int32)
    config = tracks.TrackConfig(min_track_length=2)
    answers, short = tracks.aggregate_tracks(ids, frames, probs, labels, groups, config,
                                             model_thresholds=[0.5] * 4)
    assert short == [9] and [t.track_id for t in answers] == [7]
    t = answers[0]
    assert t.frames == [1, 2, 3]
    mean = probs[[1, 3, 0]].mean(0)
    np.testing.assert_allclose(t.probabilities[[0, 3]], mean[[0, 3]], rtol=1e-6)
    assert np.isnan(t.probabilities[[1, 2]]).all() and t.labels.tolist() == [1, -1, -1, 1]
    assert t.answers == {"gender": "female", "Hat": True}  # orientation stays per frame
    assert tracks.runs_text(t.per_frame["orientation"]) == "front@1-2 back@3"
    assert tracks.runs_text(t.per_frame_labels[2]) == "0@1-2 1@3"
    # a per-request threshold moves the aggregated label; per_frame=() aggregates all
    answers, _ = tracks.aggregate_tracks(ids, frames, probs, labels, groups,
                                         tracks.TrackConfig(per_frame=()), {"Hat": 0.6},
                                         model_thresholds=[0.5] * 4)
    assert answers[0].answers["Hat"] is bool(mean[3] > 0.6) and "orientation" in answers[0].answers
    with pytest.raises(g.GroupsError, match="'pose' is neither a group nor an attribute"):
        tracks.TrackConfig(per_frame=("pose",)).per_frame_keys(groups)


def test_synthetic_sequence_layout_and_determinism(tmp_path):
    config = synth_frames.FramesConfig(str(tmp_path / "a"), num_frames=6, num_people=3, height=160,
                                       width=200, min_person_height=48, max_person_height=90, seed=3)
    result = synth_frames.generate_frames(config)
    again = synth_frames.generate_frames(synth_frames.FramesConfig(**{**config.__dict__,
                                                                      "output_dir": str(tmp_path / "b")}))
    assert len(result["frames"]) == 6 and result["num_boxes"] > 6
    for name in ("gt", "det", "people"):
        with open(result[name], "rb") as f, open(again[name], "rb") as h:
            assert f.read() == h.read()
    for a, b in zip(result["frames"], again["frames"]):
        with open(a, "rb") as f, open(b, "rb") as h:
            assert f.read() == h.read()
    found, _ = det.read_detections(result["gt"], need_ids=True)
    assert {d.track_id for d in found} == {1, 2, 3}
    for d in found:  # inside the frame, the right size
        assert 0 <= d.x1 < d.x2 <= 200 and 0 <= d.y1 < d.y2 <= 160 and 48 <= d.y2 - d.y1 <= 90
    assert os.path.basename(result["frames"][0]) == "000001.jpg"
    with pytest.raises(ValueError, match="num_people"):
        synth_frames.FramesConfig(str(tmp_path), num_people=0)


def test_alm_synth_frames_cli(tmp_path, capsys):
    module = importlib.import_module("pipelines.synth_frames")
    for args, code in (([f"--output_dir={tmp_path / 's'}", "--num_frames=3", "--num_people=2",
                         "--frame_height=100", "--frame_width=120"], None),
                       ([f"--output_dir={tmp_path / 'bad'}", "--frame_height=30"], 1)):
        with flagsaver.flagsaver():
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["alm-synth-frames", *args])
            try:
                module.main(["alm-synth-frames"])
                got = None
            except SystemExit as e:
                got = e.code
        assert got == code
    captured = capsys.readouterr()
    assert "wrote 3 frames" in captured.out and len(os.listdir(tmp_path / "s" / "img1")) == 3
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alm-synth-frames: error:") and "height=30" in lines[0]


def test_crops_per_track_spreads_over_the_track_and_prefers_high_scores():
    from alm_tf.people import answering

    def d(frame, tid, score, size=10):
        return det.Detection(frame, None, tid, 0.0, 0.0, float(size), float(size), score, f"f{frame}")

    by_frame = {n: [d(n, 1, 0.5 + (0.3 if n in (2, 7) else 0.0)), d(n, 2, 0.9)] for n in range(1, 11)}
    by_frame[3].append(d(3, -1, 0.1))  # no track id: always answered
    chosen = answering.select_for_tracks(by_frame, 2)
    track1 = sorted(n for n, k in chosen if by_frame[n][k].track_id == 1)
    assert track1 == [2, 7]  # the best of frames 1-5 and of frames 6-10
    assert len([1 for n, k in chosen if by_frame[n][k].track_id == 2]) == 2 and (3, 2) in chosen
    assert len(answering.select_for_tracks(by_frame, None)) == 21
    assert len(answering.select_for_tracks(by_frame, 50)) == 21


def test_a_track_shows_its_answers_with_the_frames_per_frame_keys():
    track = tracks.TrackAnswer(1, [1, 5, 9], np.zeros(1), np.zeros(1), {"gender": "female"},
                               {"orientation": [{"value": "front", "first_frame": 1, "last_frame": 5},
                                                {"value": "back", "first_frame": 9, "last_frame": 9}]})
    assert track.shown(7) == {"gender": "female", "orientation": "front"}
    assert track.shown(9) == {"gender": "female", "orientation": "back"}
    assert track.shown(7, {"gender": "male", "orientation": "side"}) == {"gender": "female", "orientation": "side"}
