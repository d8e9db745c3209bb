"""Inference on image files: the image predictor, the CSV/JSONL writers, localization pictures."""
