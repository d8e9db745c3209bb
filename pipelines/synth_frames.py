r"""alm-synth-frames: a synthetic camera sequence of moving people (MOT layout).

  alm-synth-frames --output_dir=seq --num_frames=30 --num_people=4 --seed=0
  alm-predict --model=demo_output/export/1 --images=seq/img1 \
      --tracks=seq/gt/gt.txt --output_dir=people

  alm-synth-frames --output_dir=street --num_frames=60 --num_people=12 --frame_width=640 \
      --frame_height=360 --person_height_min=140 --person_height_max=200 --crossings --write_video
  alm-predict --model=demo_output/export/1 --video=street/street.mp4 --output_dir=people

Writes `seq/img1/000001.jpg ...`, `seq/gt/gt.txt` (tracks), `seq/det/det.txt`
(detections without ids), `seq/seqinfo.ini` and `seq/people.json` (each
track's true attributes), with --write_video `seq/street.mp4`; see alm_tf.people.synth_frames.
A non-empty --output_dir is refused unless --overwrite, which replaces it whole (no
frame of an earlier, longer sequence stays); the sequence is written beside
it and swapped in at the end, so a failure (a full disk) leaves nothing
half-written (`alm_tf.outputs`).
"""

from __future__ import annotations

import dataclasses
import os

from absl import flags

from alm_tf import outputs
from alm_tf.people.synth_frames import FramesConfig, generate_frames
from pipelines import _cli, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_DEFAULTS = FramesConfig(output_dir="-")
_OUTPUT_DIR, _SEED = _shared_flags.synthetic_output()
_NUM_FRAMES = flags.DEFINE_integer("num_frames", _DEFAULTS.num_frames, "Frames.", lower_bound=1, **_OVERRIDE)
_NUM_PEOPLE = flags.DEFINE_integer("num_people", _DEFAULTS.num_people, "People (tracks).", lower_bound=1,
                                   **_OVERRIDE)
_HEIGHT = flags.DEFINE_integer("frame_height", _DEFAULTS.height, "Frame height in pixels.", **_OVERRIDE)
_WIDTH = flags.DEFINE_integer("frame_width", _DEFAULTS.width, "Frame width in pixels.", **_OVERRIDE)
_MIN_H = flags.DEFINE_integer("person_height_min", None, "Smallest person crop height in pixels (the person "
                              "is 88-96% of it; default: 35% of the frame height, at least 32).", **_OVERRIDE)
_MAX_H = flags.DEFINE_integer("person_height_max", None, "Largest person crop height in pixels (default: "
                              "60% of the frame height).", **_OVERRIDE)
_SPEED = _cli.define_finite_float("speed", _DEFAULTS.speed, "Largest speed in pixels per frame.", **_OVERRIDE)
_CROSSINGS = flags.DEFINE_bool("crossings", _DEFAULTS.crossings, "People walk across one street band from "
                               "both sides: they cross and occlude each other.", **_OVERRIDE)
_VIDEO = flags.DEFINE_bool("write_video", _DEFAULTS.video, "Also write the frames as street.mp4 (PyAV).",
                           **_OVERRIDE)
_COLOURS = flags.DEFINE_bool("colours", _DEFAULTS.colours, "Draw people in named clothing colours, "
                             "labelled in people.json (as alm-synth --colours).", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def main(argv: list[str]) -> None:
    """Writes the sequence; exits 1 with one line on stderr on bad flags."""
    if not _OUTPUT_DIR.value:
        _cli.fail("alm-synth-frames", "--output_dir is required")
    try:
        config = FramesConfig(_OUTPUT_DIR.value, num_frames=_NUM_FRAMES.value, num_people=_NUM_PEOPLE.value,
                              height=_HEIGHT.value, width=_WIDTH.value, seed=_SEED.value,
                              min_person_height=_MIN_H.value, max_person_height=_MAX_H.value, speed=_SPEED.value,
                              crossings=_CROSSINGS.value, video=_VIDEO.value,
                              colours=_COLOURS.value)
        with outputs.replaced_dir(config.output_dir, overwrite=_OVERWRITE.value) as staging:
            info = generate_frames(dataclasses.replace(config, output_dir=staging))
            gt = os.path.join(config.output_dir, os.path.relpath(info["gt"], staging))
    except (ValueError, OSError) as e:
        _cli.fail("alm-synth-frames", _cli.first_line(e))
        return
    print(f"wrote {len(info['frames'])} frames with {info['num_boxes']} person boxes of {config.num_people} "
          f"tracks to {config.output_dir} (tracks: {gt})")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-synth-frames", main)


if __name__ == "__main__":
    run()
