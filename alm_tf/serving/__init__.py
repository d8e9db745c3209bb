"""Serving: SavedModel export for TF Serving (`export`) and clients (`client`).

Import the submodules directly; this package imports nothing heavy.
"""

SIGNATURE_KEYS = ("serving_default", "predict_images", "predict_examples", "metadata")

__all__ = ["SIGNATURE_KEYS"]
