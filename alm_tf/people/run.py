"""alm-predict on camera frames: person boxes in, readable answers out.

`predict_people` reads frames (image files, or a video through PyAV),
person boxes (`alm_tf.people.detections`: a MOT det/gt file or a box CSV;
or a detector and a tracker, `alm_tf.people.footage`), runs a predictor on
the boxes (the `predict_boxes` path: crop at full resolution, then the
model's resize; `alm_tf.preprocessing.crops`; per track at most
`crops_per_track` boxes, `alm_tf.people.answering`) and writes, into the
output folder V:

  V/boxes.csv          a row per answered box: frame, image, id, x1, y1, x2, y2,
                       score, clipped, one column per attribute group
                       (the readable answer), then `<attr>_prob`, `<attr>`
  V/tracks.csv         (tracks) a row per track: id, first_frame,
                       last_frame, num_frames, the groups' answers (runs
                       `value@first-last` for per-frame ones), `<attr>_prob`
                       and `<attr>` (aggregated; runs of labels and no
                       probability for per-frame attributes)
  V/predictions.jsonl  a JSON object per box (boxes) or per track (tracks)
                       with `answers`
  V/pictures/<frame>.png   frames with each person's box and answers
  (tracks) V/tracks.txt, V/thumbnails/, V/people.mp4, V/run.json
                       (alm_tf.people.footage_files)

Boxes reaching outside their frame are clipped (the `clipped` column, and a
line on `report`); an empty box, a frame the file names that does not
exist, a bad or unknown column stop the run with one line naming it. All
files are written under temporary names and renamed at the end, after
every box has been answered: a failed run leaves no half-written file.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable
from typing import Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from alm_tf.people import detections as det_lib
from alm_tf import groups as groups_lib
from alm_tf.people import tracks as tracks_lib
from alm_tf.people import video as video_lib
from alm_tf.inference import pictures as visualization
from alm_tf.preprocessing import image_input
from alm_tf.people import answering
from alm_tf.people import footage_files
from alm_tf.people import footage as footage_run
from alm_tf.people import frames as frames_lib
from alm_tf.inference.writers import StagedFiles as _Outputs
from alm_tf.inference.writers import attribute_cells, attribute_columns, jsonl_record, write_jsonl
from alm_tf.inference.writers import PICTURES_DIR, PREDICTIONS_JSONL

BOXES_CSV = "boxes.csv"
TRACKS_CSV = "tracks.csv"
MODES = ("boxes", "tracks")
BOX_COLUMNS = ("frame", "image", "id", "x1", "y1", "x2", "y2", "score", "clipped")
TRACK_COLUMNS = ("id", "first_frame", "last_frame", "num_frames", "camera", "start_time", "end_time")
DEFAULT_MAX_PICTURES = 100
#: Boxes per track the model answers (tracks runs); chosen by measurement (BUILD_NOTES.md).
DEFAULT_CROPS_PER_TRACK = 4

__all__ = ["PeopleConfig", "PeoplePlan", "PeopleResult", "attribute_columns", "jsonl_record", "plan_people",
           "predict_people", "write_jsonl"]


@dataclasses.dataclass(frozen=True)
class PeopleConfig:
    """What alm-predict does with frames and boxes.

    Args:
        mode: `boxes` (an answer per box) or `tracks` (an answer per track).
        boxes_file: the detections / tracks file (alm_tf.people.detections); None:
            a detector and a tracker find the people (`footage`, mode `tracks`).
        output_dir: V.
        images: frame files (`--images`), with `images_root` the folder
            they were found in (for relative names); or
        video: a video file (frames numbered from 1).
        thresholds: per-request thresholds (alm_tf.groups).
        track: TrackConfig (mode `tracks`).
        min_score: drop boxes with a lower score.
        boxes_per_call: person crops per model call.
        crops_per_track: (tracks) the model answers at most this many boxes
            of a track, spread over it (None: every box).
        pictures, max_pictures: frame pictures (the first frames with boxes).
        progress: a progress bar.
        footage: the detector and tracker (alm_tf.people.footage.FootageConfig)
            when there is no boxes file.
        fps: frames per second of image frames or of a video without
            timestamps (None: the container's, or 25 for image frames).
        camera: the camera name (None: the video's stem or the frames' folder).
        source: the frames as the user gave them (run.json).
        video_out: write the annotated people.mp4 (tracks).
        max_image_pixels: a frame whose header claims more pixels ends the
            run with one line before any decoding (`alm_tf.preprocessing.image_input`).
    """

    mode: str
    boxes_file: str
    output_dir: str
    images: Optional[tuple[str, ...]] = None
    images_root: Optional[str] = None
    video: Optional[str] = None
    thresholds: groups_lib.ThresholdSpec = None
    track: tracks_lib.TrackConfig = tracks_lib.TrackConfig()
    min_score: Optional[float] = None
    boxes_per_call: int = 16
    crops_per_track: Optional[int] = DEFAULT_CROPS_PER_TRACK
    pictures: bool = True
    max_pictures: Optional[int] = DEFAULT_MAX_PICTURES
    progress: bool = True
    footage: Optional[footage_run.FootageConfig] = None
    fps: Optional[float] = None
    camera: Optional[str] = None
    source: Optional[str] = None
    video_out: bool = True
    max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        image_input.check_max_pixels(self.max_image_pixels)
        if (self.boxes_file is None) == (self.footage is None):
            raise ValueError("give a boxes file or a detector and a tracker (exactly one)")
        if self.footage is not None and self.mode != "tracks":
            raise ValueError("a detector and a tracker give tracks: mode must be 'tracks'")
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ValueError(f"fps must be > 0. Received: {self.fps}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}. Received: mode={self.mode!r}")
        if (self.images is None) == (self.video is None):
            raise ValueError("give the frames as image files or as a video (exactly one)")
        if self.boxes_per_call < 1:
            raise ValueError(f"boxes_per_call must be >= 1. Received: {self.boxes_per_call}")
        if self.crops_per_track is not None and self.crops_per_track < 1:
            raise ValueError(f"crops_per_track must be >= 1. Received: {self.crops_per_track}")
        if self.max_pictures is not None and self.max_pictures < 0:
            raise ValueError(f"max_pictures must be >= 0. Received: {self.max_pictures}")


@dataclasses.dataclass
class PeopleResult:
    """What `predict_people` wrote and found."""

    files: dict[str, str]
    num_boxes: int
    num_frames: int
    clipped: int
    dropped: int
    tracks: list = dataclasses.field(default_factory=list)
    short_tracks: list = dataclasses.field(default_factory=list)
    pictures: list = dataclasses.field(default_factory=list)
    probabilities: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    answers: list = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------ output


def _box_rows(boxes: list[frames_lib.PersonBox], groups, probabilities, labels, answers):
    for b, p, y, answer in zip(boxes, probabilities, labels, answers):
        d = b.detection
        yield ([b.frame, b.image or "", d.track_id if d.track_id >= 0 else "", *b.box,
                "" if d.score is None else f"{d.score:g}", int(b.clipped)]
               + groups.csv_values(answer) + attribute_cells(p, y))


def _track_rows(answers: list[tracks_lib.TrackAnswer], groups, camera: str, clock):
    for t in answers:
        cells = []
        for name in groups.csv_columns:
            cells.append(tracks_lib.runs_text(t.per_frame[name]) if name in t.per_frame
                         else groups.cell(t.answers[name]))
        attrs = []
        for m in range(len(groups.attributes)):
            if m in t.per_frame_labels:
                attrs += ["", tracks_lib.runs_text(t.per_frame_labels[m])]
            else:
                attrs += [f"{t.probabilities[m]:.6f}", int(t.labels[m])]
        yield ([t.track_id, t.frames[0], t.frames[-1], t.num_frames, camera, clock.seconds(t.frames[0]),
                clock.seconds(t.frames[-1])] + cells + attrs)


@dataclasses.dataclass
class PeoplePlan:
    """The boxes of a run placed in their frames (no model needed)."""

    numbers: list[int]  # frame numbers with boxes, in order
    paths: dict[int, str]  # frame number -> image file (image frames)
    by_frame: dict[int, list[det_lib.Detection]]
    dropped: int
    num_frames: Optional[int] = None  # frames of the footage (detector runs)
    fps: Optional[float] = None
    detector: Optional[str] = None
    tracker: Optional[str] = None


def plan_people(config: PeopleConfig, report: Callable[[str], None] = print) -> PeoplePlan:
    """Reads the boxes file (or runs the detector and tracker) and finds every
    frame it names (one-line errors)."""
    if config.boxes_file is None:
        return _plan_footage(config, report)
    found, dropped = det_lib.read_detections(config.boxes_file, need_ids=config.mode == "tracks",
                                             min_score=config.min_score)
    if dropped:
        report(f"dropped {dropped} boxes with a score below {config.min_score}")
    if config.video is not None:
        video_lib.require_av()
    return PeoplePlan(*frames_lib.place(config, found), dropped)


def _fps(config: PeopleConfig) -> float:
    if config.fps is not None:
        return float(config.fps)
    if config.video is not None:
        return video_lib.frame_rate(config.video) or footage_run.DEFAULT_FRAMES_FPS
    return footage_run.DEFAULT_FRAMES_FPS


def _plan_footage(config: PeopleConfig, report: Callable[[str], None]) -> PeoplePlan:
    from alm_tf.people import detectors
    from alm_tf.people import tracking

    fps = _fps(config)
    detector = detectors.load_detector(config.footage.detector)
    tracker = tracking.make_tracker(config.footage.tracker, fps)
    images, numbers = frames_lib.numbered_images(config)
    bar = tqdm(unit="frame", desc="detect", disable=not config.progress)
    try:
        found, seen = footage_run.detect_tracks(footage_run.iter_source_frames(config.video, images, numbers),
                                                detector, tracker, config.footage.every,
                                                on_frame=lambda _: bar.update(1))
    finally:
        bar.close()
    report(f"{detector.name} and {tracker.name} found {len({d.track_id for d in found})} tracks "
           f"({len(found)} boxes) in {seen} frames")
    return PeoplePlan(*frames_lib.place(config, found), 0, num_frames=seen, fps=fps, detector=detector.name,
                      tracker=tracker.name)


def _check_request(predictor, config: PeopleConfig, groups, attributes) -> None:
    """Thresholds and per-frame names the run cannot use fail before any work."""
    groups_lib.request_thresholds(config.thresholds, attributes)
    if config.mode == "tracks":
        config.track.per_frame_keys(groups)
        if getattr(predictor, "model_thresholds", None) is None and (
                config.thresholds is None or isinstance(config.thresholds, dict)):
            raise ValueError("--tracks needs the model's thresholds, which this server does not tell "
                             "(its metadata is unreachable); pass --thresholds with one value or one "
                             "per attribute")


def predict_people(predictor, config: PeopleConfig, *, plan: Optional[PeoplePlan] = None,
                   report: Callable[[str], None] = print) -> PeopleResult:
    """Answers the boxes of `config.boxes_file` (or of the detector and tracker)
    and writes the files (module docstring).

    `predictor`: `alm_tf.inference.images.ImagePredictor` (its `boxes_fn`,
    `attributes`, `groups`, `model_thresholds`).

    Raises:
        ValueError (DetectionsError, GroupsError, VideoError): bad input,
            one line naming it; nothing is written.
    """
    attributes = list(predictor.attributes)
    groups = getattr(predictor, "groups", None) or groups_lib.infer(attributes)
    _check_request(predictor, config, groups, attributes)
    tracking = config.mode == "tracks"
    plan = plan or plan_people(config, report)
    clock = footage_files.FrameClock(plan.fps or _fps(config)) if tracking else None
    thumbnails = footage_files.Thumbnails() if tracking else None
    chosen = answering.select_for_tracks(plan.by_frame, config.crops_per_track) if tracking else None
    placed, answered, outputs = answering.answer_boxes(
        predictor, config, plan.numbers, plan.paths, plan.by_frame, report,
        clock.times if tracking and config.video is not None else None, thumbnails, chosen)
    boxes = [placed[i] for i in answered]
    probabilities = outputs["probabilities"]
    labels = groups_lib.relabel(probabilities, outputs["labels"], config.thresholds, attributes)
    answers = groups.answers(probabilities, labels)
    all_answers: list = [None] * len(placed)
    for i, answer in zip(answered, answers):
        all_answers[i] = answer
    os.makedirs(config.output_dir, exist_ok=True)
    out = _Outputs(config.output_dir)
    result = PeopleResult({}, len(boxes), len(plan.numbers), sum(b.clipped for b in placed), plan.dropped,
                          probabilities=probabilities, labels=labels, answers=answers)
    try:
        out.csv(BOXES_CSV, [*BOX_COLUMNS, *groups.csv_columns, *attribute_columns(attributes)],
                _box_rows(boxes, groups, probabilities, labels, answers))
        if tracking:
            result.tracks, result.short_tracks = tracks_lib.aggregate_tracks(
                [b.detection.track_id for b in boxes], [b.frame for b in boxes], probabilities, labels,
                groups, config.track, config.thresholds, getattr(predictor, "model_thresholds", None),
                _track_frames(placed))
            _write_tracks(out, config, plan, predictor, placed, all_answers, result, groups, clock, thumbnails,
                          report)
        else:
            out.jsonl(PREDICTIONS_JSONL, (jsonl_record(
                answer, p, attributes, frame=b.frame, image=b.image,
                id=b.detection.track_id if b.detection.track_id >= 0 else None, box=list(b.box),
                score=b.detection.score, clipped=b.clipped)
                for b, p, answer in zip(boxes, probabilities, answers)))
        if config.pictures and config.max_pictures != 0:
            result.pictures = _pictures(config, placed, all_answers, result.tracks, plan.numbers, plan.paths,
                                        getattr(predictor, "exif_orientation",
                                                image_input.DEFAULT_EXIF_ORIENTATION))
        result.files = out.commit()
    except BaseException:
        out.discard()
        raise
    return result


def _track_frames(placed: list[frames_lib.PersonBox]) -> dict[int, list[int]]:
    """track id -> the frames of all its boxes (answered or not)."""
    out: dict[int, list[int]] = {}
    for b in placed:
        out.setdefault(b.detection.track_id, []).append(b.frame)
    return out


def _write_tracks(out, config: PeopleConfig, plan: PeoplePlan, predictor, placed, all_answers, result, groups,
                  clock, thumbnails, report) -> None:
    """tracks.csv, predictions.jsonl (a record per track) and the footage files."""
    attributes = list(groups.attributes)
    camera = footage_files.default_camera(config)
    out.csv(TRACKS_CSV, [*TRACK_COLUMNS, *groups.csv_columns, *attribute_columns(attributes)],
            _track_rows(result.tracks, groups, camera, clock))
    out.jsonl(PREDICTIONS_JSONL, (jsonl_record(
        t.answers, t.probabilities, attributes, id=t.track_id, camera=camera,
        start_time=clock.seconds(t.frames[0]), end_time=clock.seconds(t.frames[-1]),
        first_frame=t.frames[0], last_frame=t.frames[-1], num_frames=t.num_frames,
        per_frame=t.per_frame) for t in result.tracks))
    footage_files.write_footage_files(
        out, config, placed, result.tracks, all_answers, thumbnails, clock, camera, predictor,
        lambda: frames_lib.all_frames(config), plan.num_frames, plan.detector, plan.tracker)
    if result.short_tracks:
        report(f"{len(result.short_tracks)} tracks shorter than {config.track.min_track_length} "
               f"frames have no row (ids {', '.join(map(str, result.short_tracks[:10]))}"
               f"{', ...' if len(result.short_tracks) > 10 else ''})")


def _pictures(config: PeopleConfig, boxes: list[frames_lib.PersonBox], answers, track_answers, numbers, paths,
              exif_orientation: str) -> list[str]:
    """The first `max_pictures` frames with their people (written atomically, one by one);
    `answers[i]`: box i's own answer, None when the model did not answer it."""
    chosen = numbers if config.max_pictures is None else numbers[:config.max_pictures]
    by_track = {t.track_id: t for t in track_answers}
    per_frame: dict[int, list[tuple[frames_lib.PersonBox, Optional[dict]]]] = {}
    for b, answer in zip(boxes, answers):
        per_frame.setdefault(b.frame, []).append((b, answer))
    written, used = [], set()
    folder = os.path.join(config.output_dir, PICTURES_DIR)
    for number, image, data in frames_lib.iter_frames(config, list(chosen), paths):
        frame = (image_input.oriented(Image.open(io.BytesIO(data)), exif_orientation).convert("RGB")
                 if isinstance(data, bytes) else data)
        items = per_frame.get(number, [])
        lines, keys = [], []
        for b, answer in items:
            track = by_track.get(b.detection.track_id)
            shown = track.shown(number, answer) if track is not None else (answer or {})
            tid = b.detection.track_id
            lines.append(visualization.answer_lines(shown, f"#{tid}" if tid >= 0 else ""))
            keys.append(tid if tid >= 0 else len(keys))
        name = _unique(os.path.splitext(os.path.basename(image))[0] if image else f"{number:06d}", used)
        picture = visualization.people_picture(frame, [b.box for b, _ in items], lines, keys,
                                               title=os.path.basename(image) if image else f"frame {number}")
        written.append(visualization.save_png(os.path.join(folder, f"{name}.png"), picture))
    return written


def _unique(stem: str, used: set) -> str:
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name
