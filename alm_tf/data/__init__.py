"""Data: readers per source layout, TFRecord conversion, input pipeline,
synthetic pedestrians. The pixel contract they share with serving is
`alm_tf.preprocessing.pixels`.

Importing this package does no TensorFlow work beyond imports.
"""

from alm_tf.data import example, schemas
from alm_tf.data.manifest import manifest_sources, read_manifest
from alm_tf.data.pipeline import make_dataset

__all__ = ["example", "make_dataset", "manifest_sources", "read_manifest", "schemas"]
