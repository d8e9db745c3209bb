"""Conversion and archive tagging as Apache Beam pipelines (the `beam` extra).

`options` holds the runner rules (Beam's pipeline options, the offline
local runner), `convert` the data-set conversion (its workers' side,
free of TensorFlow, in `records`), `handler` the
RunInference model handler around `alm_tf.artifacts.load`, `archive` the
archive tagging into a search index.
"""
