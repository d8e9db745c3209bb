r"""alm-synth-frames: a synthetic camera sequence of moving people (MOT layout).

  alm-synth-frames --output_dir=seq --num_frames=30 --num_people=4 --seed=0
  alm-predict --model=demo_output/export/1 --images=seq/img1 \
      --tracks=seq/gt/gt.txt --output_dir=people

Writes `seq/img1/000001.jpg ...`, `seq/gt/gt.txt` (tracks), `seq/det/det.txt`
(detections without ids), `seq/seqinfo.ini` and `seq/people.json` (each
track's true attributes); see alm_tf.data.synth_frames.
"""

from __future__ import annotations

from absl import flags

from alm_tf.data.synth_frames import FramesConfig, generate_frames
from pipelines import _cli

_OVERRIDE = {"allow_override": True}
_DEFAULTS = FramesConfig(output_dir="-")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output folder.", **_OVERRIDE)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", _DEFAULTS.num_frames, "Frames.", lower_bound=1, **_OVERRIDE)
_NUM_PEOPLE = flags.DEFINE_integer("num_people", _DEFAULTS.num_people, "People (tracks).", lower_bound=1,
                                   **_OVERRIDE)
_HEIGHT = flags.DEFINE_integer("frame_height", _DEFAULTS.height, "Frame height in pixels.", **_OVERRIDE)
_WIDTH = flags.DEFINE_integer("frame_width", _DEFAULTS.width, "Frame width in pixels.", **_OVERRIDE)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed (same seed, same bytes).", lower_bound=0, **_OVERRIDE)


def main(argv: list[str]) -> None:
    """Writes the sequence; exits 1 with one line on stderr on bad flags."""
    if not _OUTPUT_DIR.value:
        _cli.fail("alm-synth-frames", "--output_dir is required")
    try:
        config = FramesConfig(_OUTPUT_DIR.value, num_frames=_NUM_FRAMES.value, num_people=_NUM_PEOPLE.value,
                              height=_HEIGHT.value, width=_WIDTH.value, seed=_SEED.value)
        info = generate_frames(config)
    except (ValueError, OSError) as e:
        _cli.fail("alm-synth-frames", _cli.first_line(e))
        return
    print(f"wrote {len(info['frames'])} frames with {info['num_boxes']} person boxes of {config.num_people} "
          f"tracks to {config.output_dir} (tracks: {info['gt']})")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-synth-frames", main)


if __name__ == "__main__":
    run()
