"""Data: readers per source layout, TFRecord conversion, input pipeline,
synthetic pedestrians. The pixel contract they share with serving is
`alm_tf.preprocessing.pixels`.

Importing this package imports no TensorFlow: `make_dataset` (the input
pipeline) loads it on first use, so that data workers that write records
(`alm_tf.beam.records`) start without it.
"""

from alm_tf.data import example, schemas
from alm_tf.data.manifest import manifest_sources, read_manifest


def __getattr__(name):
    if name == "make_dataset":
        from alm_tf.data.pipeline import make_dataset

        return make_dataset
    raise AttributeError(f"module 'alm_tf.data' has no attribute {name!r}")


__all__ = ["example", "make_dataset", "manifest_sources", "read_manifest", "schemas"]
