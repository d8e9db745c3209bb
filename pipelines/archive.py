"""alm-archive: tag an archive of videos into a search index, as an Apache Beam pipeline.

  alm-archive --videos='archive/**/*.mp4' --model=export/1 --index=IDX \\
      -- --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing
  alm-archive --videos='/mnt/archive/**/*.mp4' --model=/mnt/models/alm/1 --index=/mnt/index \\
      -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp ...

Every video that --videos matches goes through alm-predict's detector and
tracker (its flags: --detector, --tracker, --crops_per_track, ...), the
model (Beam's RunInference, batches of person crops) and the per-track
aggregation; its
rows go into the index IDX as alm-index writes them (one Parquet file per
video, replaced when it is tagged again), ready for alm-search. Beam's
pipeline options follow `--` (the `beam` extra; see savedmodel/BEAM.md).
A video that cannot be read is reported, one line, and the others finish
(exit 1 at the end); --fail_on_error stops at the first one instead.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from alm_tf.people import tracks
from pipelines import _cli
from pipelines import _footage_flags as footage_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_VIDEOS = flags.DEFINE_string("videos", None, "Video files: a glob (** for any depth) or one path.",
                              **_OVERRIDE)
_MODEL = flags.DEFINE_string("model", None, "SavedModel dir, .keras file, model dir, or a portable "
                             "export (.onnx, .tflite, OpenVINO .xml), on a path every worker sees.", **_OVERRIDE)
_INDEX = flags.DEFINE_string("index", None, "The search index folder (created when missing or empty).",
                             **_OVERRIDE)
_BATCH = flags.DEFINE_integer("images_per_call", 16, "Person crops per model call at most.", lower_bound=1,
                              **_OVERRIDE)
_FAIL_ON_ERROR = flags.DEFINE_bool("fail_on_error", False, "Stop at the first video that cannot be "
                                   "tagged (default: report it and tag the others).", **_OVERRIDE)
_AGGREGATE = flags.DEFINE_enum("aggregate", tracks.DEFAULT_AGGREGATION, tracks.AGGREGATIONS,
                               "How a track's per-frame probabilities become one.", **_OVERRIDE)
_MIN_TRACK = flags.DEFINE_integer("min_track_length", tracks.DEFAULT_MIN_TRACK_LENGTH,
                                  "Tracks with fewer frames get no row.", lower_bound=1, **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-archive", message)


def _config():
    """The flags as a validated ArchiveConfig (ValueError, one line)."""
    from alm_tf.beam import archive

    for name, flag in (("videos", _VIDEOS), ("model", _MODEL), ("index", _INDEX)):
        if not flag.value:
            raise ValueError(f"--{name} is required")
    if footage_flags.NO_VIDEO.present:
        raise ValueError("--no_video: alm-archive writes no annotated video")
    if not os.path.exists(_MODEL.value):
        raise ValueError(f"--model not found: {_MODEL.value!r}")
    if os.path.exists(_INDEX.value) and not os.path.isdir(_INDEX.value):
        raise ValueError(f"--index is a file, not a folder: {_INDEX.value!r}")
    return archive.ArchiveConfig(
        videos=tuple(archive.find_videos(_VIDEOS.value)), model=_MODEL.value, index=_INDEX.value,
        footage=footage_flags.footage_config(),
        track=tracks.TrackConfig(_AGGREGATE.value, min_track_length=_MIN_TRACK.value),
        fps=footage_flags.FPS.value, camera=footage_flags.CAMERA.value, batch_size=_BATCH.value,
        crops_per_track=footage_flags.crops_per_track(), fail_on_error=_FAIL_ON_ERROR.value)


def main(argv: list[str]) -> None:
    """Tags; exits 1 with one line on stderr per bad input or failed video."""
    try:
        from alm_tf.beam import archive, options

        options.require_beam()
        options.quiet_logs()
        cfg = _config()
        result = archive.tag_archive(cfg, argv[1:])
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    tracks_found = sum(result.tagged.values())
    print(f"tagged {len(result.tagged)} of {len(cfg.videos)} videos ({tracks_found} tracks) into {cfg.index}")
    for line in archive.summary_lines(result):
        print(f"alm-archive: skipped {line}", file=sys.stderr)
    if result.failed:
        _fail(f"{len(result.failed)} of {len(cfg.videos)} videos could not be tagged (listed above)")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-archive", main, after_dashes=True)


if __name__ == "__main__":
    run()
