"""RunInference's model handler around the project's one loader (`alm_tf.artifacts.load`).

Beam's own TensorFlow handler loads with `tf.keras.models.load_model`,
which Keras 3 refuses for SavedModel folders; and the ONNX handler would
take only one of the model's formats. This handler loads whatever
`alm-predict --model` takes (a model dir, a `.keras` file, a SavedModel
from alm-export, a portable export) on each worker, once per process, and
answers batches of person crops (RGB 0..255 float32 at the model's image
size, cut by `alm_tf.preprocessing.crops`'s rule) with the model's `predict`: the same
numbers `alm-predict` gets for the same crops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from alm_tf import artifacts

#: The outputs a crop's answer keeps (the per-track aggregation needs no more).
KEPT_OUTPUTS = ("probabilities", "labels")
DEFAULT_BATCH_SIZE = 16

__all__ = ["DEFAULT_BATCH_SIZE", "KEPT_OUTPUTS", "AlmModelHandler"]


class AlmModelHandler(ModelHandler):
    """Person crops -> {probabilities, labels} per crop, with `artifacts.load(model)`.

    Args:
        model: anything `alm_tf.artifacts.load` reads, on a path every
            worker sees (a shared or mounted folder, or one baked into the
            worker's container).
        which: a model dir's checkpoint (`final`, `best`).
        max_batch_size: crops per model call: every call but a bundle's
            last takes this many (alm-predict's boxes per call). Beam's
            own batching would start at one crop per call and grow,
            paying the model's cost per call many times over.
    """

    def __init__(self, model: str, which: str = "final", max_batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__(min_batch_size=max_batch_size, max_batch_size=max_batch_size)
        self._source = model
        self._which = which

    def load_model(self) -> artifacts.LoadedModel:
        return artifacts.load(self._source, which=self._which)

    def run_inference(self, batch: Sequence[np.ndarray], model: artifacts.LoadedModel,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        outputs = model.predict(np.stack([np.asarray(crop, np.float32) for crop in batch]))
        kept = {k: np.asarray(outputs[k]) for k in KEPT_OUTPUTS}
        return [PredictionResult(crop, {k: v[i] for k, v in kept.items()}) for i, crop in enumerate(batch)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(np.asarray(crop).nbytes for crop in batch)

    def get_metrics_namespace(self) -> str:
        return "alm_tf"
