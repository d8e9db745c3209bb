"""alm-predict's flags for footage without a boxes file: the person detector,
the tracker, and the footage's time and camera; `footage_config()` turns them
into one validated `alm_tf.people.footage.FootageConfig`.
"""

from __future__ import annotations

from absl import flags

from alm_tf.people import detectors
from alm_tf.people import footage as run
from alm_tf.people import run as people_run
from alm_tf.people import tracking
from pipelines import _cli
from pipelines._cli import OVERRIDE as _OVERRIDE

_DETECTOR_DEFAULTS = detectors.DetectorConfig()

DETECTOR = flags.DEFINE_string(
    "detector", detectors.HOG, f"Person detector: {detectors.HOG} (OpenCV's HOG people detector), a "
    "SavedModel folder (TF Object Detection API outputs) or an .onnx file (Ultralytics YOLOv8/11 layout).",
    **_OVERRIDE)
HOG_MODEL = flags.DEFINE_enum(
    "hog_model", _DETECTOR_DEFAULTS.hog_model, list(detectors.HOG_MODELS), "hog: which of OpenCV's people SVMs: "
    + "; ".join(f"{name}, a {m.window[0]}x{m.window[1]} window" for name, m in detectors.HOG_MODELS.items())
    + " (people shorter than the window need --detector_upscale).", **_OVERRIDE)
UPSCALE = _cli.define_finite_float("detector_upscale", _DETECTOR_DEFAULTS.upscale, "hog: enlarge frames by this "
                             "factor first (people shorter than the --hog_model window need it).", **_OVERRIDE)
EVERY = flags.DEFINE_integer("detector_every", 1, "Detect on every K-th frame; the frames between keep "
                             "the last tracked boxes.", lower_bound=1, **_OVERRIDE)
THRESHOLD = _cli.define_finite_float("detector_threshold", None, "Drop detections with a lower score (default: "
                               + ", ".join(f"hog:{name} {m.threshold:g}" for name, m in detectors.HOG_MODELS.items())
                               + f", SavedModel {detectors.SavedModelDetector.default_threshold:g}, ONNX "
                               f"{detectors.OnnxYoloDetector.default_threshold:g}).", **_OVERRIDE)
MIN_HEIGHT = _cli.define_finite_float("min_person_height", _DETECTOR_DEFAULTS.min_person_height,
                                "Drop detections lower than this many pixels.", **_OVERRIDE)
PERSON_CLASS = flags.DEFINE_integer("person_class", None, "The person class of a SavedModel (default "
                                    f"{detectors.OD_API_PERSON_CLASS}) or ONNX (default "
                                    f"{detectors.YOLO_PERSON_CLASS}) detector.", **_OVERRIDE)
TRACKER = flags.DEFINE_enum("tracker", tracking.DEFAULT_TRACKER, list(tracking.TRACKERS),
                            "Tracker (the `trackers` library).", **_OVERRIDE)
TRACK_BUFFER = flags.DEFINE_integer("track_buffer", None, "Frames a lost track is kept (library "
                                    "default 30).", **_OVERRIDE)
TRACK_THRESHOLD = _cli.define_finite_float("track_threshold", None, "Score a detection needs to start a "
                                     "track (library default per tracker).", **_OVERRIDE)
MATCH_IOU = _cli.define_finite_float("match_iou", None, "Overlap a detection needs to join a track (library "
                               "default per tracker).", **_OVERRIDE)
TRACK_MIN_FRAMES = flags.DEFINE_integer("track_min_frames", None, "Frames before a new track gets an "
                                        "id (library default per tracker).", **_OVERRIDE)
FPS = _cli.define_finite_float("fps", None, "Frames per second of --images frames (default "
                         f"{run.DEFAULT_FRAMES_FPS:g}) or of a video without timestamps.", **_OVERRIDE)
CAMERA = flags.DEFINE_string("camera", None, "Camera name in tracks.csv (default: the video's file "
                             "stem, or the frames' folder).", **_OVERRIDE)
CROPS_PER_TRACK = flags.DEFINE_integer(
    "crops_per_track", people_run.DEFAULT_CROPS_PER_TRACK, "The model answers at most this many boxes of a "
    "track, spread over it (the highest-scoring, then largest, of each stretch); 0: every box.", lower_bound=0,
    **_OVERRIDE)
NO_VIDEO = flags.DEFINE_bool("no_video", False, "Do not write the annotated people.mp4.", **_OVERRIDE)

#: Flags that only the detector + tracker path reads.
FOOTAGE_ONLY = ("detector", "hog_model", "detector_upscale", "detector_every", "detector_threshold",
                "min_person_height", "person_class", "tracker", "track_buffer", "track_threshold", "match_iou", "track_min_frames")
#: Flags of every run on footage that ends in tracks.
TRACKS_ONLY = ("fps", "camera", "no_video", "crops_per_track")


def any_present(names) -> bool:
    return any(flags.FLAGS[name].present for name in names)


def crops_per_track():
    """--crops_per_track as PeopleConfig takes it (None: every box)."""
    return CROPS_PER_TRACK.value or None


def footage_config() -> run.FootageConfig:
    """The flags as a validated FootageConfig (ValueError, one line, on a bad value)."""
    detector = detectors.DetectorConfig(
        DETECTOR.value, threshold=THRESHOLD.value, min_person_height=MIN_HEIGHT.value,
        person_class=PERSON_CLASS.value, upscale=UPSCALE.value, hog_model=HOG_MODEL.value)
    tracker = tracking.TrackerConfig(TRACKER.value, TRACK_BUFFER.value, TRACK_THRESHOLD.value, MATCH_IOU.value,
                                     TRACK_MIN_FRAMES.value)
    return run.FootageConfig(detector, tracker, EVERY.value)
