"""Data: readers per source layout, TFRecord conversion, input pipeline,
preprocessing shared with serving, synthetic pedestrians.

Importing this package does no TensorFlow work beyond imports.
"""

from alm_tf.data import example, preprocessing, schemas
from alm_tf.data.pipeline import make_dataset, manifest_sources, read_manifest

__all__ = ["example", "make_dataset", "manifest_sources", "preprocessing", "read_manifest", "schemas"]
