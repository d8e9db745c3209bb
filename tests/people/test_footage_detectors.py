"""Person detectors (HOG, OD API SavedModel, YOLO ONNX) and the tracker:
boxes come back in the frame's pixels, wrong layouts get one line."""

import numpy as np
import pytest

from alm_tf.testing import detector_files
from alm_tf.people import detectors
from alm_tf.people import footage as run
from alm_tf.people import tracking

FRAME = np.zeros((100, 200, 3), np.uint8)  # H=100, W=200


def _config(spec, **kw):
    return detectors.DetectorConfig(spec, **kw)


def test_saved_model_boxes_in_pixels_person_class_only(tmp_path):
    path = detector_files.od_api_saved_model(
        tmp_path / "od", boxes=[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.2, 0.1, 0.9, 0.3]],
        scores=[0.9, 0.95, 0.3], classes=[1, 3, 1])
    boxes, scores = detectors.load_detector(_config(path))(FRAME)
    np.testing.assert_allclose(boxes, [[40, 10, 120, 50]], atol=1e-3)  # class 3 and the 0.3 score dropped
    np.testing.assert_allclose(scores, [0.9])
    boxes, _ = detectors.load_detector(_config(path, person_class=3, threshold=0.1))(FRAME)
    np.testing.assert_allclose(boxes, [[0, 0, 200, 100]], atol=1e-3)


def test_saved_model_of_another_layout_named_in_one_line(tmp_path):
    path = detector_files.od_api_saved_model(tmp_path / "other", [[0, 0, 1, 1]], [1], [1], outputs=["logits"])
    with pytest.raises(detectors.DetectorError) as e:
        detectors.load_detector(_config(path))
    message = str(e.value)
    assert "\n" not in message and "detection_boxes" in message and "found" in message and "logits" in message


def test_letterbox_undone_exactly():
    frame = np.random.default_rng(0).integers(0, 255, (100, 200, 3), np.uint8)
    image, gain, (pad_x, pad_y) = detectors.letterbox(frame, (64, 64))
    assert image.shape == (64, 64, 3) and gain == pytest.approx(0.32) and (pad_x, pad_y) == (0, 16)
    assert (image[:16] == detectors.LETTERBOX_GRAY).all() and (image[48:] == detectors.LETTERBOX_GRAY).all()


def test_yolo_onnx_boxes_in_pixels_with_nms(tmp_path):
    truth = [[50, 20, 100, 80], [52, 21, 101, 79], [150, 10, 190, 90], [0, 0, 30, 60]]
    table = detector_files.yolo_table(truth, [[0.9, 0.1], [0.8, 0.1], [0.7, 0.2], [0.1, 0.9]], (100, 200))
    path = detector_files.yolo_onnx(tmp_path / "y.onnx", table)
    boxes, scores = detectors.load_detector(_config(path))(FRAME)
    np.testing.assert_allclose(boxes, [truth[0], truth[2]], atol=1e-3)  # overlap suppressed, class 1 not a person
    np.testing.assert_allclose(scores, [0.9, 0.7], atol=1e-6)
    boxes, _ = detectors.load_detector(_config(path, person_class=1))(FRAME)
    np.testing.assert_allclose(boxes, [truth[3]], atol=1e-3)


def test_yolo_onnx_bad_layout_and_class_out_of_range(tmp_path):
    table = detector_files.yolo_table([[50, 20, 100, 80]], [[0.9, 0.1]], (100, 200))
    with pytest.raises(detectors.DetectorError, match=r"--person_class=2 does not exist: .* 2 classes"):
        detectors.load_detector(_config(detector_files.yolo_onnx(tmp_path / "y.onnx", table), person_class=2))
    flat = detector_files.yolo_onnx(tmp_path / "flat.onnx", table[0])
    with pytest.raises(detectors.DetectorError) as e:
        detectors.load_detector(_config(flat))
    assert "\n" not in str(e.value) and "expected" in str(e.value) and "output0 [6, 1]" in str(e.value)
    with pytest.raises(detectors.DetectorError, match="not found"):
        detectors.load_detector(_config(str(tmp_path / "missing.onnx")))


def test_config_rejects_bad_values():
    for kw, word in ((dict(upscale=0), "detector_upscale"), (dict(min_person_height=-1), "min_person_height"),
                     (dict(person_class=-1), "person_class"), (dict(person_class=1), "hog")):
        with pytest.raises(ValueError, match=word):
            detectors.DetectorConfig(**kw)
    with pytest.raises(ValueError, match="hog detector only"):
        detectors.DetectorConfig("x.onnx", upscale=2)
    with pytest.raises(ValueError, match="hog_model must be one of inria, daimler. Received: 'dalal'"):
        detectors.DetectorConfig(hog_model="dalal")
    other = next(m for m in detectors.HOG_MODELS if m != detectors.DEFAULT_HOG_MODEL)
    with pytest.raises(ValueError, match="hog_model applies to the hog detector only"):
        detectors.DetectorConfig("x.onnx", hog_model=other)
    with pytest.raises(ValueError, match="tracker must be one of"):
        tracking.TrackerConfig("deepsort")
    with pytest.raises(ValueError, match="detector_every"):
        run.FootageConfig(every=0)


def test_hog_runs_on_a_frame_without_people():
    boxes, scores = detectors.load_detector(_config(detectors.HOG, upscale=2))(FRAME)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_tracker_keeps_ids_and_detect_every_holds_boxes():
    frames = [(n, None, FRAME) for n in range(1, 9)]

    def detector(frame, state={"k": 0}):
        state["k"] += 1
        k = state["k"]
        return (np.asarray([[10 + 2 * k, 10, 50 + 2 * k, 90], [120, 10, 160, 90]], np.float32),
                np.asarray([0.9, 0.8], np.float32))

    tracker = tracking.make_tracker(tracking.TrackerConfig("sort", minimum_consecutive_frames=1), fps=10)
    found, seen = run.detect_tracks(frames, detector, tracker, every=2)
    assert seen == 8
    ids = {d.track_id for d in found}
    assert ids == {1, 2}  # two people, two ids from 1
    by_frame = {}
    for d in found:
        by_frame.setdefault(d.frame, []).append((d.track_id, d.x1))
    assert by_frame[4] == by_frame[3]  # frame 4 not detected: frame 3's boxes held


@pytest.mark.parametrize("name", sorted(tracking.TRACKERS))
def test_each_tracker_numbers_its_tracks_from_the_start(name):
    """The library counts ids per class across instances: a sequence's ids must not depend on
    the sequences tracked before it in the same process (alm-archive tags many)."""
    boxes, scores = np.asarray([[10, 10, 50, 90]], np.float32), np.asarray([0.9], np.float32)

    def ids():
        tracker = tracking.make_tracker(tracking.TrackerConfig(name, minimum_consecutive_frames=1), fps=10)
        return [tracker.update(boxes, scores)[2].tolist() for _ in range(3)][-1]

    assert ids() == ids()


def test_missing_module_message_names_the_extra_or_the_system_library():
    no_module = ImportError("No module named 'cv2'", name="cv2")
    assert "pip install 'alm-tf[video]'" in detectors.missing_module_message("the hog detector needs OpenCV",
                                                                             no_module)
    no_libgl = ImportError("libGL.so.1: cannot open shared object file: No such file or directory")
    line = detectors.missing_module_message("the hog detector needs OpenCV", no_libgl)
    assert "libGL.so.1" in line and "apt-get install libgl1" in line and "\n" not in line


def _iou(box, truth):
    w = max(0.0, min(box[2], truth.x2) - max(box[0], truth.x1))
    h = max(0.0, min(box[3], truth.y2) - max(box[1], truth.y1))
    return w * h / ((box[2] - box[0]) * (box[3] - box[1]) + (truth.x2 - truth.x1) * (truth.y2 - truth.y1) - w * h)


@pytest.mark.parametrize("seed", [0, 3])
def test_default_hog_finds_a_synthetic_person_and_boxes_its_extent(tmp_path, seed):
    """One person about 115 px tall on a 320x240 street: the default (Daimler, 48x96) finds it at
    scale 1 and its box, the window less its margins, overlaps the silhouette's box closely."""
    from alm_tf.people import mot_metrics, synth_frames

    info = synth_frames.generate_frames(synth_frames.FramesConfig(
        str(tmp_path / "s"), num_frames=1, num_people=1, height=240, width=320, min_person_height=120,
        max_person_height=140, speed=0, seed=seed))
    (truth,) = mot_metrics.read_mot(info["gt"])
    detector = detectors.load_detector(detectors.DetectorConfig())
    assert detector.name == f"hog:{detectors.DEFAULT_HOG_MODEL}"
    boxes, scores = detector(run.read_rgb(info["frames"][0]))
    assert len(boxes) == 1 and scores[0] > detectors.HOG_MODELS[detectors.DEFAULT_HOG_MODEL].threshold
    assert _iou(boxes[0], truth) > 0.7
