"""Evaluation: the field's metrics, the report with threshold tuning, localization quality."""
