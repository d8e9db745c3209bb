"""The demo's footage stage: a synthetic street video through alm-predict's
detector + tracker path, scored against its ground truth.

`run_footage_stage` writes a synthetic street sequence (people crossing
one street band, `alm_tf.people.synth_frames`) encoded as a video, runs
the default detector and tracker and the exported model on it through the
library (what `alm-predict --video=... --output_dir=...` runs), and scores
the result: the tracker's IDF1 and MOTA (motmetrics), HOTA (trackers.eval) and the model's
per-track and per-box mA against each person's true attributes
(`alm_tf.people.quality.found_people_ma`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from alm_tf.people import footage as footage_run
from alm_tf.people import footage_files
from alm_tf.people import mot_metrics
from alm_tf.people import quality
from alm_tf.people import run as people_run
from alm_tf.people import synth_frames

#: The street: 640x360, person crops 140 to 200 px tall (people of about 125 to
#: 190 px: the default HOG window finds them at scale 1).
STREET = dict(num_frames=30, num_people=4, height=360, width=640, min_person_height=140,
              max_person_height=200, speed=8.0, crossings=True, video=True)
SEQUENCE_DIR = "street"
PEOPLE_DIR = "people"

__all__ = ["run_footage_stage"]


def run_footage_stage(output_dir: str, export_dir: str, seed: int,
                      report: Callable[[str], None] = print) -> dict:
    """Runs the stage into `output_dir` (street/ and people/); returns
    {"idf1", "mota", "hota", "per_track_mA", "per_box_mA", "tracks", "people",
    "paths": {"video", "people_dir", "tracks_csv", "tracks_txt", "people_video"}}."""
    from alm_tf.inference import images as prediction

    info = synth_frames.generate_frames(synth_frames.FramesConfig(
        os.path.join(output_dir, SEQUENCE_DIR), seed=seed, **STREET))
    out = os.path.join(output_dir, PEOPLE_DIR)
    config = people_run.PeopleConfig(mode="tracks", boxes_file=None, output_dir=out, video=info["video"],
                                     footage=footage_run.FootageConfig(), progress=False, pictures=False)
    predictor = prediction.load_image_predictor(export_dir)
    people_run.predict_people(predictor, config, report=report)
    truth = mot_metrics.read_mot(info["gt"])
    tracks_txt = os.path.join(out, footage_files.TRACKS_TXT)
    found = mot_metrics.read_mot(tracks_txt) if os.path.getsize(tracks_txt) else []
    tracker = mot_metrics.mot_metrics(truth, found)
    tracks_csv = os.path.join(out, people_run.TRACKS_CSV)
    attributes = quality.found_people_ma(info["people"], truth, os.path.join(out, people_run.BOXES_CSV),
                                         tracks_csv, tracks_txt)
    result = {"idf1": tracker["idf1"], "mota": tracker["mota"], "hota": tracker["hota"],
              "per_track_mA": attributes["per_track_ma"],
              "per_box_mA": attributes["per_box_ma"], "tracks": attributes["tracks"],
              "people": STREET["num_people"],
              "paths": {"video": info["video"], "people_dir": out, "tracks_csv": tracks_csv,
                        "tracks_txt": tracks_txt, "people_video": os.path.join(out, footage_files.PEOPLE_VIDEO)}}
    report(f"footage: {attributes['tracks']} tracks of {STREET['num_people']} people, IDF1 {result['idf1']:.3f}, "
           f"MOTA {result['mota']:.3f}, HOTA {result['hota']:.3f}, per-track mA {result['per_track_mA']:.3f}, "
           f"per-box mA {result['per_box_mA']:.3f}")
    return result
