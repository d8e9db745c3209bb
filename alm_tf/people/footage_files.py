"""The footage files of a tracks run (tracks.txt, thumbnails, people.mp4, run.json)
and the frame times of its tracks; called by alm_tf.people.run."""

from __future__ import annotations

import dataclasses
from typing import Optional

from alm_tf import groups as groups_lib
from alm_tf.inference import pictures as visualization
from alm_tf.people import footage_outputs as fo
from alm_tf.people import footage as footage_run

__all__ = ["FrameClock", "write_footage_files"]


@dataclasses.dataclass
class FrameClock:
    """Seconds of each frame: the container's timestamps, else (frame - 1) / fps."""

    fps: float
    times: dict = dataclasses.field(default_factory=dict)

    def seconds(self, number: int) -> float:
        t = self.times.get(number)
        return round(float((number - 1) / self.fps if t is None else t), 6)


def write_footage_files(out, config, boxes, track_answers, answers, thumbnails: fo.Thumbnails,
                        clock: FrameClock, camera: str, predictor, frames, num_frames: Optional[int],
                        detector: Optional[str], tracker: Optional[str]) -> None:
    """tracks.txt, thumbnails/<id>.jpg, people.mp4 (unless `config.video_out` is
    off) and run.json, under `out`'s temporary names.

    `out`: the caller's _Outputs; `frames`: a callable giving every frame
    (number, path, RGB array) again, for the video, the frame size and count.
    """
    rows = sorted((b.frame, b.detection.track_id, *b.box, b.detection.score) for b in boxes)
    with open(out.path(fo.TRACKS_TXT), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in fo.mot_rows(rows)))
    thumbnails.write(out.path, [t.track_id for t in track_answers])
    per_frame = _drawn(boxes, track_answers, answers) if config.video_out else None
    seen, size, writer = 0, None, None
    try:
        for number, _, array in frames():
            seen += 1
            if size is None:
                size = [int(array.shape[0]), int(array.shape[1])]
                if per_frame is None:
                    if num_frames is not None:
                        break
                    continue
                writer = fo.VideoWriter(out.path(fo.PEOPLE_VIDEO), clock.fps, *size)
            if writer is not None:
                writer.write(fo.annotate(array, per_frame.get(number, [])))
    finally:
        if writer is not None:
            writer.close()
    attributes = list(predictor.attributes)
    groups = getattr(predictor, "groups", None) or groups_lib.infer(attributes)
    thresholds = getattr(predictor, "model_thresholds", None)
    fo.write_run_json(out.path(fo.RUN_JSON), camera=camera, source=config.video or config.source,
                      fps=float(clock.fps), frame_size=size,
                      num_frames=int(num_frames if num_frames is not None else seen),
                      model={"attributes": attributes,
                             "thresholds": None if thresholds is None else [round(float(t), 6) for t in thresholds],
                             "groups": groups.description()},
                      detector=detector, tracker=tracker)


def _drawn(boxes, track_answers, answers) -> dict:
    """frame number -> [(box, track id, text lines)] of the annotated video."""
    by_track = {t.track_id: t for t in track_answers}
    per_frame: dict[int, list] = {}
    for b, answer in zip(boxes, answers):
        track = by_track.get(b.detection.track_id)
        shown = dict(track.answers) if track is not None else dict(answer)
        if track is not None:
            shown.update({k: answer[k] for k in track.per_frame})
        lines = visualization.answer_lines(shown, f"#{b.detection.track_id}", width=24)[:4]
        per_frame.setdefault(b.frame, []).append((b.box, b.detection.track_id, lines))
    return per_frame


def default_camera(config) -> str:
    return config.camera or footage_run.camera_name(config.video, config.images_root, config.images)
