"""The image-input flags, defined once for every binary that reads image files.

Names, defaults and rules come from `alm_tf.preprocessing.image_input`.
"""

from __future__ import annotations

from absl import flags

from alm_tf.preprocessing import image_input
from pipelines._cli import OVERRIDE as _OVERRIDE

MAX_IMAGE_PIXELS = flags.DEFINE_integer(
    image_input.MAX_PIXELS_FLAG, image_input.DEFAULT_MAX_IMAGE_PIXELS,
    "Largest image accepted, in pixels (width x height), read from the header before decoding "
    "(alm-predict and alm-convert skip a larger image with one line; alm-export's SavedModel "
    "answers it with INVALID_ARGUMENT).", lower_bound=1, **_OVERRIDE)
