r"""alm-synth: write a synthetic pedestrian-attribute data set.

  alm-synth --output_dir=D --num_images=2000 --seed=0 [--colours]
  alm-convert --format=csv --annotations=D/annotations.csv --images_dir=D \
      --output_dir=records

Writes `D/images/*.jpg`, `D/annotations.csv` and `D/regions.json`. A
non-empty D is refused unless --overwrite, which replaces it whole (no
image of an earlier, larger set stays); see `alm_tf.outputs`. The
records go beside D, not inside it: no command writes inside a folder it
reads.
"""

from __future__ import annotations

import dataclasses
import time

from absl import flags

from alm_tf import outputs
from alm_tf.data.synth import CROPS, SynthConfig, generate
from pipelines import _cli, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_OUTPUT_DIR, _SEED = _shared_flags.synthetic_output()
_NUM_IMAGES = flags.DEFINE_integer("num_images", 2000, "Number of images.", lower_bound=1, **_OVERRIDE)
_MIN_HEIGHT = flags.DEFINE_integer("min_image_height", 80, "Smallest image height in pixels.", **_OVERRIDE)
_MAX_HEIGHT = flags.DEFINE_integer("max_image_height", 240, "Largest image height in pixels.", **_OVERRIDE)
_CROP = flags.DEFINE_enum(
    "crop", SynthConfig.crop, CROPS, "How the crop frames the labelled person: tight (person "
    "88-96% of the height, near the top, centred, like the annotated boxes of PETA, RAP and "
    "PA-100K) or loose (78-93%, anywhere in the slack, off-centre by up to 10%).", **_OVERRIDE
)
_DISTRACTORS = flags.DEFINE_bool(
    "distractors", True, "Draw other people cut by the crop border and attribute look-alikes "
    "off their regions (--nodistractors: the labelled person alone).", **_OVERRIDE
)


_COLOURS = flags.DEFINE_bool(
    "colours", SynthConfig.colours, "Also draw named clothing colours and label them (upper_<colour>, "
    "lower_<colour>: the upper_color and lower_color groups); off, the data set is as without the flag.",
    **_OVERRIDE
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-synth", message)


def main(argv: list[str]) -> None:
    """Generates the data set; exits 1 with one line on stderr on bad flags."""
    if not _OUTPUT_DIR.value:
        _fail("--output_dir is required")
    try:
        cfg = SynthConfig(
            output_dir=_OUTPUT_DIR.value,
            num_images=_NUM_IMAGES.value,
            seed=_SEED.value,
            min_height=_MIN_HEIGHT.value,
            max_height=_MAX_HEIGHT.value,
            distractors=_DISTRACTORS.value,
            crop=_CROP.value,
            colours=_COLOURS.value,
        )
        start = time.monotonic()
        with outputs.replaced_dir(cfg.output_dir, overwrite=_OVERWRITE.value) as staging:
            info = generate(dataclasses.replace(cfg, output_dir=staging))
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    splits = ", ".join(f"{k}: {v}" for k, v in info["splits"].items())
    print(f"wrote {info['num_images']} images ({splits}) to {cfg.output_dir} in {time.monotonic() - start:.1f} s")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-synth", main)


if __name__ == "__main__":
    run()
