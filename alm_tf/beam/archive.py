"""Tagging an archive of videos into a search index, as a Beam pipeline.

Per video (one work item: detection and tracking need the frames in
order), the detector and tracker run as in `alm-predict --video`, and
the crop of every box alm-predict would answer (at most `crops_per_track`
per track, `alm_tf.people.answering`; `alm_tf.preprocessing.crops`'s
rule, in the order alm-predict answers them) goes out keyed by (video,
answer number). The crops of all
videos are batched through `RunInference` (`handler.AlmModelHandler`,
the project's one loader). Per video again, the answers come back in box
order and alm-predict's own code aggregates them per track and writes
the people folder (tracks.csv, thumbnails, run.json; no people.mp4),
which alm-index's own code writes into the index (one Parquet file per
video, replaced when the video is tagged again). So the rows are those
of `alm-predict --video` + `alm-index`.

A video that cannot be read is reported and the others finish; with
`fail_on_error` the first such video stops the pipeline instead. The
index and the videos must be on a file system every worker sees.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Optional

import numpy as np

from alm_tf import artifacts
from alm_tf import groups as groups_lib
from alm_tf.beam import options as options_lib
from alm_tf.inference import images as images_lib
from alm_tf.people import answering
from alm_tf.people import footage as footage_run
from alm_tf.people import run as people_run
from alm_tf.people import tracks as tracks_lib
from alm_tf.preprocessing import crops as crops_lib
from alm_tf.preprocessing import image_input
from alm_tf.search import index as index_lib
from alm_tf.search import layout

#: Marks a video's failure in the exception a stopped pipeline raises.
FAILURE_MARK = "alm-archive video failed: "
_SUMMARY = "summary.json"

__all__ = ["FAILURE_MARK", "ArchiveConfig", "ArchiveError", "ArchiveResult", "find_videos", "people_config",
           "summary_lines", "tag_archive"]


class ArchiveError(ValueError):
    """Bad input to archive tagging; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ArchiveConfig:
    """What alm-archive does (see the module docstring).

    Args:
        videos: the video files.
        model: anything `alm_tf.artifacts.load` reads.
        index: the search index folder (created when missing or empty).
        footage: the detector and tracker (`alm_tf.people.footage.FootageConfig`).
        track: the per-track aggregation (`alm_tf.people.tracks.TrackConfig`).
        fps: frames per second of videos without timestamps (None: the container's).
        camera: one camera name for every video (None: each video's file stem).
        batch_size: crops per model call at most.
        crops_per_track: the model answers at most this many boxes of a
            track (None: every box), as alm-predict's --crops_per_track.
        fail_on_error: stop at the first video that fails.
    """

    videos: tuple[str, ...]
    model: str
    index: str
    footage: footage_run.FootageConfig = footage_run.FootageConfig()
    track: tracks_lib.TrackConfig = tracks_lib.TrackConfig()
    fps: Optional[float] = None
    camera: Optional[str] = None
    batch_size: int = 16
    crops_per_track: Optional[int] = people_run.DEFAULT_CROPS_PER_TRACK
    fail_on_error: bool = False

    def __post_init__(self) -> None:
        if not self.videos:
            raise ArchiveError("no videos to tag")
        if self.batch_size < 1:
            raise ArchiveError(f"batch size must be >= 1. Received: {self.batch_size}")
        if self.crops_per_track is not None and self.crops_per_track < 1:
            raise ArchiveError(f"crops per track must be >= 1. Received: {self.crops_per_track}")


@dataclasses.dataclass(frozen=True)
class ArchiveResult:
    """Tagged videos (video -> tracks) and failed ones (video -> one-line reason)."""

    tagged: dict
    failed: dict


def find_videos(pattern: str) -> list[str]:
    """The files a glob (`**` recursive) or a path names, sorted; ArchiveError for none."""
    paths = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    if not paths:
        raise ArchiveError(f"no video matches --videos={pattern!r}")
    return paths


def people_config(cfg: ArchiveConfig, video: str, output_dir: str) -> people_run.PeopleConfig:
    """alm-predict's configuration of one video (no pictures, no people.mp4)."""
    return people_run.PeopleConfig(
        mode="tracks", boxes_file=None, output_dir=output_dir, video=video, footage=cfg.footage, fps=cfg.fps,
        camera=cfg.camera, track=cfg.track, boxes_per_call=cfg.batch_size, crops_per_track=cfg.crops_per_track,
        pictures=False, progress=False, video_out=False)


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _failed(cfg: ArchiveConfig, video: str, error: BaseException):
    import apache_beam as beam

    if cfg.fail_on_error:
        raise ArchiveError(f"{FAILURE_MARK}{video}: {_first_line(error)}") from None
    return beam.pvalue.TaggedOutput("outcome", (video, None, _first_line(error)))


def _detect_and_crop(video: str, cfg: ArchiveConfig, image_size: tuple[int, int]):
    """Worker: the video's plan (tagged `plan`) and the crop of every box alm-predict
    answers, keyed (video, answer number)."""
    import apache_beam as beam

    height, width = image_size
    try:
        config = people_config(cfg, video, "")
        plan = people_run.plan_people(config, report=lambda _: None)
        chosen = answering.select_for_tracks(plan.by_frame, config.crops_per_track)
        boxes = answering.placed_boxes(config, plan.numbers, plan.paths, plan.by_frame,
                                       image_input.DEFAULT_EXIF_ORIENTATION)  # video frames: RGB arrays
        n = 0
        for k, frame, box in boxes:
            if (box.frame, k) in chosen:
                yield (video, n), crops_lib.crops_from_arrays([frame], np.asarray([box.normalized]), np.zeros(1),
                                                              height, width)[0].numpy()
                n += 1
    except (ValueError, OSError) as e:
        yield _failed(cfg, video, e)
        return
    # Last: a video that fails half-way has no plan, and its crops' answers are dropped.
    yield beam.pvalue.TaggedOutput("plan", (video, plan))


class _Replay:
    """A predictor's `boxes_fn` that hands out answers computed elsewhere, in box order."""

    def __init__(self, probabilities: np.ndarray, labels: np.ndarray):
        self.probabilities, self.labels, self.at = probabilities, labels, 0

    def __call__(self, frames, boxes, box_indices) -> dict:
        n, k = len(boxes), self.at
        self.at += n
        return {"probabilities": self.probabilities[k:k + n], "labels": self.labels[k:k + n]}


def _write_video(keyed, cfg: ArchiveConfig, meta: dict):
    """Worker: a video's answers through alm-predict's tracks and files, into the index."""
    video, grouped = keyed
    plans = list(grouped["plan"])
    if not plans:  # failed before its crops: already reported
        return
    answers = sorted(grouped["answers"], key=lambda a: a[0])
    m = len(meta["attributes"])
    probabilities = np.asarray([a[1]["probabilities"] for a in answers], np.float32).reshape(-1, m)
    labels = np.asarray([a[1]["labels"] for a in answers], np.int32).reshape(-1, m)
    predictor = images_lib.ImagePredictor(None, list(meta["attributes"]), cfg.model, "beam",
                                          _Replay(probabilities, labels), meta["groups"], meta["thresholds"])
    work = tempfile.mkdtemp(prefix=".archive-", dir=cfg.index)
    try:
        folder = os.path.join(work, "people")
        result = people_run.predict_people(predictor, people_config(cfg, video, folder), plan=plans[0],
                                                  report=lambda _: None)
        index_lib.index_folders([folder], cfg.index)
    except (ValueError, OSError) as e:
        yield _failed(cfg, video, e)
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    yield video, len(result.tracks), None


def _write_summary(outcomes, path: str):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sorted(outcomes), f)


def _run_pipeline(cfg: ArchiveConfig, meta: dict, work: str, pipeline_args: Sequence[str]) -> None:
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from alm_tf.beam.handler import AlmModelHandler

    options = options_lib.pipeline_options(pipeline_args)
    handler = KeyedModelHandler(AlmModelHandler(cfg.model, max_batch_size=cfg.batch_size))
    with options_lib.pipeline(options) as p:
        found = (p | "Videos" >> beam.Create(list(cfg.videos)) | "Spread" >> beam.Reshuffle()
                 | "DetectTrackCrop" >> beam.FlatMap(_detect_and_crop, cfg, meta["image_size"])
                 .with_outputs("plan", "outcome", main="crops"))
        answers = (found.crops | "Model" >> RunInference(handler)
                   | "ByVideo" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1].inference))))
        written = ({"plan": found.plan, "answers": answers} | "Join" >> beam.CoGroupByKey()
                   | "Index" >> beam.FlatMap(_write_video, cfg, meta).with_outputs("outcome", main="done"))
        _ = ((found.outcome, written.outcome, written.done) | "Outcomes" >> beam.Flatten()
             | "All" >> beam.combiners.ToList()
             | "Summary" >> beam.Map(_write_summary, os.path.join(work, _SUMMARY)))


def _model_meta(cfg: ArchiveConfig) -> dict:
    """The model's attributes, groups, thresholds and image size (loaded once here: a model the
    workers cannot load fails before the pipeline starts)."""
    loaded = artifacts.load(cfg.model)
    return {"attributes": list(loaded.attributes), "groups": loaded.groups,
            "thresholds": tuple(loaded.thresholds), "image_size": tuple(loaded.image_size)}


def _open_index(cfg: ArchiveConfig, meta: dict) -> None:
    groups: groups_lib.AttributeGroups = meta["groups"]
    model = {"attributes": meta["attributes"], "thresholds": [round(float(t), 6) for t in meta["thresholds"]],
             "groups": {"groups": groups.description()["groups"]}}
    found = index_lib.open_index(cfg.index, model)["model"]
    if list(found["attributes"]) != model["attributes"] \
            or found.get("groups", {}).get("groups") != model["groups"]["groups"]:
        raise layout.SearchError(f"{cfg.index!r} holds answers of a model with other attributes or groups "
                                 f"than {cfg.model!r}; tag into another index")


def tag_archive(cfg: ArchiveConfig, pipeline_args: Sequence[str] = ()) -> ArchiveResult:
    """Runs the pipeline (see the module docstring); `pipeline_args`: Beam's options.

    Raises:
        ValueError (BeamError, ModelSourceError, SearchError, ArchiveError):
            bad options, a model that cannot be loaded, an index of another
            model, or (with `fail_on_error`) the first video that fails.
    """
    options_lib.pipeline_options(pipeline_args)
    meta = _model_meta(cfg)
    _open_index(cfg, meta)
    work = tempfile.mkdtemp(prefix=".archive-", dir=cfg.index)
    try:
        try:
            _run_pipeline(cfg, meta, work, pipeline_args)
        except Exception as e:  # a stopped pipeline wraps the worker's error in its own
            _raise_failure(e)
            raise
        with open(os.path.join(work, _SUMMARY), encoding="utf-8") as f:
            outcomes = json.load(f)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ArchiveResult({v: n for v, n, why in outcomes if why is None},
                         {v: why for v, n, why in outcomes if why is not None})


def _raise_failure(error: BaseException) -> None:
    """ArchiveError with the video's line when `error` carries one (fail_on_error)."""
    text = str(error)
    if FAILURE_MARK in text:
        line = text[text.index(FAILURE_MARK) + len(FAILURE_MARK):].splitlines()[0]
        raise ArchiveError(line.rstrip("'\"")) from None


def summary_lines(result: ArchiveResult) -> list[str]:
    """Readable lines of a result: one per failed video."""
    return [f"{video}: {why}" for video, why in sorted(result.failed.items())]


