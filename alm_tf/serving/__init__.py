"""Serving: SavedModel export for TF Serving (`export`), portable exports
(`portable`, `litert`) and clients (`client`), on top of `alm_tf.artifacts`.

Import the submodules directly; this package imports nothing heavy. The
endpoint names are `alm_tf.artifacts.files`' (`IMAGE_SIGNATURES`,
`BOXES_SIGNATURE`, `METADATA_SIGNATURE`).
"""
