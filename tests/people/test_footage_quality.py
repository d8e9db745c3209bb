"""Quality tools of the footage path: MOT metrics through motmetrics and
trackers.eval (HOTA), mA, synthetic crossings; and (slow) floors of the
default HOG + ByteTrack on a crossing street."""

import json

import numpy as np
import pytest

from alm_tf.people import detections as det_lib
from alm_tf.people import footage as run
from PIL import Image

from alm_tf.data import synth
from alm_tf.people import mot_metrics, quality, synth_frames, tracking, video


def _box(frame, tid, x):
    return det_lib.Detection(frame, None, tid, x, 0.0, x + 8.0, 20.0, 1.0, "")


def test_mot_metrics_perfect_swapped_and_missed():
    truth = [_box(f, i, 10.0 * i) for f in range(1, 6) for i in (1, 2)]
    m = mot_metrics.mot_metrics(truth, truth)
    assert m["idf1"] == pytest.approx(1.0) and m["hota"] == pytest.approx(1.0)
    swapped = [_box(f, i if f < 3 else 3 - i, 10.0 * i) for f in range(1, 6) for i in (1, 2)]
    m = mot_metrics.mot_metrics(truth, swapped)
    assert m["num_switches"] == 2 and m["mota"] == pytest.approx(0.8) and m["idf1"] == pytest.approx(0.6)
    # Every box found (DetA 1); each true track is one tracker id for 2 frames and the other for
    # 3: association scores 2/8 (4 matches) and 3/7 (6 matches), so AssA = (4/4 + 18/7) / 10.
    assert m["deta"] == pytest.approx(1.0) and m["assa"] == pytest.approx(25 / 70)
    assert m["hota"] == pytest.approx((25 / 70) ** 0.5)
    m = mot_metrics.mot_metrics(truth, truth[:5], ignore_ids=True)
    assert m["recall"] == pytest.approx(0.5) and m["precision"] == pytest.approx(1.0)


def test_mean_accuracy():
    truth = np.asarray([[1, 0], [0, 0], [1, 1], [0, 1]])
    assert quality.mean_accuracy(truth, truth) == pytest.approx(1.0)
    assert quality.mean_accuracy(truth, 1 - truth) == pytest.approx(0.0)
    assert quality.mean_accuracy(truth, np.ones_like(truth)) == pytest.approx(0.5)


def test_synth_crossings_and_video(tmp_path):
    info = synth_frames.generate_frames(synth_frames.FramesConfig(
        str(tmp_path / "s"), num_frames=8, num_people=4, height=120, width=200, min_person_height=40,
        max_person_height=60, crossings=True, video=True, seed=1))
    truth = mot_metrics.read_mot(info["gt"])
    starts = {d.track_id: d.x1 for d in sorted(truth, key=lambda d: -d.frame)}
    assert len(starts) == 4 and info["video"].endswith(synth_frames.VIDEO_FILE)
    first = {}
    for d in sorted(truth, key=lambda d: d.frame):
        first.setdefault(d.track_id, d)
    # Odd ids enter from the right, even ones from the left: their silhouettes
    # start within the crop's margin (a person is about half as wide as tall).
    lefts = [first[i].x1 < 0.25 * (first[i].y2 - first[i].y1) for i in sorted(first)]
    rights = [first[i].x2 > 200 - 0.25 * (first[i].y2 - first[i].y1) for i in sorted(first)]
    assert lefts == [False, True, False, True] and rights == [True, False, True, False]
    assert len({first[i].y2 for i in first}) <= 4 and max(d.y2 for d in truth) <= 120
    people = json.load(open(info["people"]))
    assert sorted(people["tracks"]) == ["1", "2", "3", "4"]
    seen = mot_metrics.read_visibility(info["gt"])  # later people cover earlier ones
    assert len(seen) == len(truth) and all(0.0 <= v <= 1.0 for v in seen.values())
    last = max(d.track_id for d in truth)
    assert all(v == 1.0 for (_, tid), v in seen.items() if tid == last) and min(seen.values()) < 1.0
    assert video.count_frames(info["video"]) == 8


def test_synth_people_are_pasted_by_their_silhouette(tmp_path):
    """The true box is the silhouette's bounding box; outside the people, the frame is the street."""
    config = synth_frames.FramesConfig(str(tmp_path / "s"), num_frames=1, num_people=1, height=120, width=200,
                                       min_person_height=60, max_person_height=80, speed=0, seed=2,
                                       jpeg_quality=100)
    info = synth_frames.generate_frames(config)
    (box,) = mot_metrics.read_mot(info["gt"])
    crop, _, _ = synth.render_pedestrian(np.random.default_rng([2, 1]), 60, 80, distractors=False,
                                         transparent=True)
    x1, y1, x2, y2 = crop.getchannel("A").getbbox()
    assert (box.x2 - box.x1, box.y2 - box.y1) == (x2 - x1, y2 - y1)
    assert (box.y2 - box.y1) / crop.size[1] > 0.85 and (box.x2 - box.x1) < crop.size[0]
    frame = np.asarray(Image.open(info["frames"][0]), np.float32)
    inside = np.zeros(frame.shape[:2], bool)
    inside[int(box.y1):int(box.y2), int(box.x1):int(box.x2)] = True
    rows = frame.mean(axis=1, keepdims=True)  # the street is a vertical gradient with mild noise
    street = np.abs(frame - rows)[~inside].mean(axis=-1)
    assert np.percentile(street, 99) < 30  # no crop background around the person


@pytest.mark.slow
def test_default_hog_bytetrack_floors_on_a_crossing_street(tmp_path):
    """Measured (seed 0): precision 0.670, recall 0.578, IDF1 0.607, MOTA 0.324, HOTA 0.502."""
    info = synth_frames.generate_frames(synth_frames.FramesConfig(
        str(tmp_path / "street"), num_frames=30, num_people=4, height=360, width=640, min_person_height=140,
        max_person_height=200, speed=8, crossings=True, seed=0))
    frames = list(run.iter_source_frames(None, info["frames"]))
    figures = quality.detection_quality(frames, mot_metrics.read_mot(info["gt"]), quality.load("hog"),
                                        tracking.TrackerConfig("bytetrack"), synth_frames.VIDEO_FPS)
    assert figures["detector_precision"] >= 0.62, figures
    assert figures["detector_recall"] >= 0.53, figures
    assert figures["idf1"] >= 0.55 and figures["mota"] >= 0.28, figures
    assert figures["hota"] >= 0.45, figures
