r"""alm-predict: attribute predictions and localization pictures for image files.

  alm-predict --model=export/1 --images='photos/*.jpg' --output_dir=V
  alm-predict --model=runs/m/final.keras --images=photos/ --output_dir=V
  alm-predict --server=localhost:8500 --attributes_file=attributes.txt \
      --images=photo.png --output_dir=V

--model: a SavedModel dir from alm-export (E/N or E, highest version), a
.keras file (it carries its attribute names; older files: a sibling
config.json or --attributes_file), a model dir (config.json +
final.keras), or a portable export (model.onnx, model*.tflite,
openvino/model.xml with the model.json beside it). --server:
a TF Serving address instead. --images: a glob, a folder or one file; JPEG, PNG,
BMP, GIF or WebP (.jpg .jpeg .png .bmp .gif .webp in a folder) of at most
--max_image_pixels (default 40 megapixels, read from the header before
decoding; a larger image is skipped with one line, a larger frame ends the
run with one line; a SavedModel's own limit, when lower, applies). A
JPEG's EXIF Orientation is treated as the model says (alm-train
--exif_orientation, default ignore), in its answers and its pictures. Writes V/predictions.csv (a row per image: the
probability `<attr>_prob` and the label `<attr>` of every attribute) and
V/pictures/<image>.png (input + one panel per ALM level with each shown
attribute's box), and V/predictions.jsonl (a JSON object per image with
readable `answers`: the model's attribute groups, alm_tf.groups). An
unreadable image is reported and skipped. A non-empty V is refused unless
--overwrite, which replaces it whole (no picture of an earlier run stays
beside the new CSV; `alm_tf.outputs`); the same for every mode.

People in camera frames (alm_tf.people.run):

  alm-predict --model=export/1 --images=seq/img1 --boxes=seq/det/det.txt --output_dir=V
  alm-predict --model=export/1 --images=seq/img1 --tracks=seq/gt/gt.txt --output_dir=V
  alm-predict --model=export/1 --video=street.mp4 --tracks=tracks.txt --output_dir=V

--boxes: a MOTChallenge det/gt file (frame, id, left, top, width, height,
...) or a CSV with a header `image, x1, y1, x2, y2[, id, score]`; writes
V/boxes.csv (a row per box), V/predictions.jsonl (a JSON object per box)
and V/pictures/<frame>.png. --tracks: the same with track ids; also
V/tracks.csv and predictions.jsonl with one row / object per track,
aggregated over its frames (--aggregate, --smoothing, --min_track_length,
--per_frame). --video: the frames of a video file (PyAV, the `video`
extra). --thresholds: one value, one per attribute, or NAME=VALUE pairs.

Footage without a boxes file (alm_tf.people): a person detector and a
tracker find the people, then the model answers once per track:

  alm-predict --model=export/1 --video=street.mp4 --output_dir=people
  alm-predict --model=export/1 --images=seq/img1 --detector=hog --fps=10 --output_dir=people

--video without --boxes/--tracks (or --images with any detector flag) runs
--detector (hog, a TF Object Detection API SavedModel, or a YOLOv8/11 .onnx)
and --tracker (bytetrack, sort, ocsort), and writes
tracks.csv (with camera, start_time, end_time), predictions.jsonl, boxes.csv,
tracks.txt (MOTChallenge), thumbnails/<id>.jpg, people.mp4 (unless
--no_video) and run.json. A --tracks run writes the same files.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import flags

from alm_tf import groups as groups_lib
from alm_tf import names, outputs
from alm_tf.people import run as people_prediction
from alm_tf.inference import images as prediction
from alm_tf.inference import writers
from alm_tf.people import tracks
from pipelines import _cli, _image_flags, _shared_flags
from pipelines import _footage_flags as footage_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_MODEL = flags.DEFINE_string("model", None, "SavedModel dir, .keras file, model dir, or a portable "
                             "export (.onnx, .tflite, OpenVINO .xml).", **_OVERRIDE)
_SERVER = flags.DEFINE_string("server", None, "TF Serving host:port (instead of --model).", **_OVERRIDE)
_MODEL_NAME = flags.DEFINE_string("model_name", names.MODEL_NAME, "Model name on the TF Serving "
                                  "server.", **_OVERRIDE)
_IMAGES = flags.DEFINE_string("images", None, "A glob, a folder or an image file.", **_OVERRIDE)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where predictions.csv and pictures/ go.", **_OVERRIDE)
_ATTRIBUTES = flags.DEFINE_string("attributes_file", None, "Attribute names, one a line.", **_OVERRIDE)
# Not `batch_size`: alm-train and alm-evaluate define it with other defaults.
_BATCH = flags.DEFINE_integer("images_per_call", 16, "Images per model call.", lower_bound=1, **_OVERRIDE)
_PICTURES = flags.DEFINE_bool("pictures", True, "Write a localization PNG per image.", **_OVERRIDE)
_ROWS = flags.DEFINE_integer("picture_attributes", 4, "Attributes per picture (predicted present "
                             "first).", lower_bound=1, **_OVERRIDE)
_PROGRESS = _shared_flags.progress()
_MAX_PICTURES = flags.DEFINE_integer("max_pictures", people_prediction.DEFAULT_MAX_PICTURES,
                                     "Pictures of at most this many images or frames.", lower_bound=0,
                                     **_OVERRIDE)
_THRESHOLDS = flags.DEFINE_list("thresholds", [], "Per-request thresholds: one value, one per attribute, "
                                "or NAME=VALUE pairs (others keep the model's).", **_OVERRIDE)
_GROUPS = flags.DEFINE_string("groups_file", None, "Attribute groups (JSON, alm_tf.groups) instead of "
                              "the model's.", **_OVERRIDE)
_BOXES = flags.DEFINE_string("boxes", None, "Person boxes in the frames: MOT det/gt file or CSV "
                             "(image, x1, y1, x2, y2).", **_OVERRIDE)
_TRACKS = flags.DEFINE_string("tracks", None, "Tracks in the frames (MOT file with ids): one answer "
                              "per track.", **_OVERRIDE)
_VIDEO = flags.DEFINE_string("video", None, "Frames from a video file (PyAV) instead of --images.",
                             **_OVERRIDE)
_MIN_SCORE = _cli.define_finite_float("min_score", None, "Drop boxes with a lower score (MOT conf).",
                                      **_OVERRIDE)
_AGGREGATE = flags.DEFINE_enum("aggregate", tracks.DEFAULT_AGGREGATION, tracks.AGGREGATIONS,
                               "How a track's per-frame probabilities become one.", **_OVERRIDE)
_SMOOTHING = _cli.define_finite_float("smoothing", tracks.DEFAULT_SMOOTHING, "Factor of "
                                      "--aggregate=ema (weight of each new frame).", **_OVERRIDE)
_MIN_TRACK = flags.DEFINE_integer("min_track_length", tracks.DEFAULT_MIN_TRACK_LENGTH,
                                  "Tracks with fewer frames get no row.", lower_bound=1, **_OVERRIDE)
_PER_FRAME = flags.DEFINE_list("per_frame", None, "Groups or attributes that stay per frame in a "
                               "track (default: orientation).", **_OVERRIDE)
_TRACK_FLAGS = ("aggregate", "smoothing", "min_track_length", "per_frame")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def _note(line: str) -> None:
    print(f"alm-predict: {line}", file=sys.stderr)


def _fail(message: str) -> None:
    _cli.fail("alm-predict", message)


def main(argv: list[str]) -> None:
    """Predicts; exits 1 with one line on stderr on bad flags or input."""
    if (_BOXES.value or _TRACKS.value or _VIDEO.value
            or footage_flags.any_present(footage_flags.FOOTAGE_ONLY + footage_flags.TRACKS_ONLY)):
        _people(_people_config())
        return
    if not _MODEL.value and not _SERVER.value:
        _fail("--model or --server is required")
    if _MODEL.value and _SERVER.value:
        _fail("give only one of --model and --server")
    for name, flag in (("images", _IMAGES), ("output_dir", _OUTPUT_DIR)):
        if not flag.value:
            _fail(f"--{name} is required")
    for name in _TRACK_FLAGS + ("min_score",):
        if flags.FLAGS[name].present:
            _fail(f"--{name} applies to --tracks (or --boxes) only")
    if _MODEL.value and not os.path.exists(_MODEL.value):
        _fail(f"--model not found: {_MODEL.value!r}")
    if _ATTRIBUTES.value and not os.path.isfile(_ATTRIBUTES.value):
        _fail(f"--attributes_file not found: {_ATTRIBUTES.value!r}")
    try:
        paths = prediction.find_images(_IMAGES.value)
    except FileNotFoundError as e:
        _fail(f"--images: {e}")
        return
    folder = _IMAGES.value if os.path.isdir(_IMAGES.value) else None
    inputs = [p for p in (_MODEL.value, _ATTRIBUTES.value, _GROUPS.value, folder) if p] + paths
    try:
        thresholds = groups_lib.parse_threshold_values(_THRESHOLDS.value)
        outputs.check_target(_OUTPUT_DIR.value, overwrite=_OVERWRITE.value, inputs=inputs)
        predictor = prediction.load_image_predictor(
            _MODEL.value, attributes_file=_ATTRIBUTES.value, server=_SERVER.value,
            model_name=_MODEL_NAME.value, groups_file=_GROUPS.value,
            max_image_pixels=_image_flags.MAX_IMAGE_PIXELS.value)
        with outputs.replaced_dir(_OUTPUT_DIR.value, overwrite=_OVERWRITE.value, inputs=inputs,
                                  report=_note) as staging:
            result = prediction.predict_files(
                predictor, paths, staging, batch_size=_BATCH.value,
                pictures=_PICTURES.value, max_picture_rows=_ROWS.value, progress=_PROGRESS.value,
                max_pictures=_MAX_PICTURES.value, thresholds=thresholds,
                max_image_pixels=_image_flags.MAX_IMAGE_PIXELS.value,
                report=_note)
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    csv_path = os.path.join(_OUTPUT_DIR.value, os.path.basename(result.csv_path))
    print(f"predicted {len(result.images)} images ({len(result.skipped)} skipped): {csv_path}"
          + (f", {len(result.pictures)} pictures in {os.path.join(_OUTPUT_DIR.value, 'pictures')}"
             if result.pictures else ""))


def _people_config() -> people_prediction.PeopleConfig:
    """Flags of the frames + boxes modes -> a validated PeopleConfig (exits on bad flags)."""
    if not _MODEL.value and not _SERVER.value:
        _fail("--model or --server is required")
    if _MODEL.value and _SERVER.value:
        _fail("give only one of --model and --server")
    if _BOXES.value and _TRACKS.value:
        _fail("give one of --boxes (an answer per box) and --tracks (an answer per track), not both")
    footage_run = not (_BOXES.value or _TRACKS.value)
    if bool(_IMAGES.value) == bool(_VIDEO.value):
        _fail("give the frames with one of --images and --video")
    if not _OUTPUT_DIR.value:
        _fail("--output_dir is required")
    if _MODEL.value and not os.path.exists(_MODEL.value):
        _fail(f"--model not found: {_MODEL.value!r}")
    for name, flag in (("attributes_file", _ATTRIBUTES), ("groups_file", _GROUPS), ("boxes", _BOXES),
                       ("tracks", _TRACKS), ("video", _VIDEO)):
        if flag.value and not os.path.isfile(flag.value):
            _fail(f"--{name} not found: {flag.value!r}")
    if _BOXES.value:
        for name in _TRACK_FLAGS + footage_flags.TRACKS_ONLY:
            if flags.FLAGS[name].present:
                _fail(f"--{name} applies to --tracks (or footage without --boxes) only")
    if not footage_run:
        for name in footage_flags.FOOTAGE_ONLY:
            if flags.FLAGS[name].present:
                _fail(f"--{name} applies without --boxes and --tracks (a detector finds the people)")
    images, root = None, None
    if _IMAGES.value:
        try:
            images = tuple(prediction.find_images(_IMAGES.value))
        except FileNotFoundError as e:
            _fail(f"--images: {e}")
        root = _IMAGES.value if os.path.isdir(_IMAGES.value) else None
    try:
        track = tracks.TrackConfig(_AGGREGATE.value, _SMOOTHING.value, _MIN_TRACK.value,
                                   None if _PER_FRAME.value is None else tuple(_PER_FRAME.value))
        return people_prediction.PeopleConfig(
            mode="boxes" if _BOXES.value else "tracks", boxes_file=_TRACKS.value or _BOXES.value or None,
            footage=footage_flags.footage_config() if footage_run else None, fps=footage_flags.FPS.value,
            camera=footage_flags.CAMERA.value, source=_IMAGES.value, video_out=not footage_flags.NO_VIDEO.value,
            crops_per_track=footage_flags.crops_per_track(),
            output_dir=_OUTPUT_DIR.value, images=images, images_root=root, video=_VIDEO.value,
            thresholds=groups_lib.parse_threshold_values(_THRESHOLDS.value), track=track,
            min_score=_MIN_SCORE.value, boxes_per_call=_BATCH.value, pictures=_PICTURES.value,
            max_pictures=_MAX_PICTURES.value, progress=_PROGRESS.value,
            max_image_pixels=_image_flags.MAX_IMAGE_PIXELS.value)
    except ValueError as e:
        _fail(_cli.first_line(e))


def _people(config: people_prediction.PeopleConfig) -> None:
    report = _note
    inputs = [p for p in (_MODEL.value, _ATTRIBUTES.value, _GROUPS.value, _BOXES.value,
                          _TRACKS.value, _VIDEO.value, config.images_root) if p] + list(config.images or ())
    inputs += [footage_flags.DETECTOR.value] if os.path.exists(footage_flags.DETECTOR.value) else []
    try:
        outputs.check_target(config.output_dir, overwrite=_OVERWRITE.value, inputs=inputs)
        plan = people_prediction.plan_people(config, report)  # bad boxes fail before the model loads
        predictor = prediction.load_image_predictor(
            _MODEL.value, attributes_file=_ATTRIBUTES.value, server=_SERVER.value,
            model_name=_MODEL_NAME.value, groups_file=_GROUPS.value,
            max_image_pixels=config.max_image_pixels)
        config = dataclasses.replace(config, max_image_pixels=predictor.image_limit(config.max_image_pixels))
        with outputs.replaced_dir(config.output_dir, overwrite=_OVERWRITE.value,
                                  inputs=inputs, report=report) as staging:
            result = people_prediction.predict_people(
                predictor, dataclasses.replace(config, output_dir=staging), plan=plan, report=report)
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    files = {k: os.path.join(config.output_dir, os.path.relpath(v, staging))
             for k, v in result.files.items() if os.path.dirname(k) == ""}
    what = (f"{len(result.tracks)} tracks" if config.mode == "tracks" else f"{result.num_boxes} boxes")
    print(f"predicted {result.num_boxes} boxes in {result.num_frames} frames -> {what}: "
          + ", ".join(files[k] for k in sorted(files))
          + (f", {len(result.pictures)} pictures in "
             f"{os.path.join(config.output_dir, writers.PICTURES_DIR)}" if result.pictures else ""))


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-predict", main)


if __name__ == "__main__":
    run()
