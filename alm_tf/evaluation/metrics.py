"""Pedestrian-attribute metrics as the ALM paper and its code define them.

Predictions: an attribute is predicted present when its probability is
STRICTLY greater than the threshold (0.5 by default, or one threshold per
attribute); `> 0.5` is our reading of the official evaluation code, and a
probability of exactly 0.5 is rare enough that `>=` would not move mA.

Label-based (per attribute m, over the images of a split):
  positive recall TP/P, negative recall TN/N, mA_m = (TP/P + TN/N) / 2,
  mA = mean over attributes of mA_m.
  Guard: when a split has no positive (P = 0) for an attribute, its
  positive recall is undefined (reported as NaN) and mA_m is its negative
  recall alone; likewise with no negatives mA_m is the positive recall
  alone. (The official code would divide by zero; counting the undefined
  term as 0 or 1 would move mA by up to 0.5/M per such attribute for a
  reason that has nothing to do with the model.)

Instance-based (per image i, averaged over images; an image whose
denominator is 0 contributes 0, as in the paper's code):
  accuracy TP/(TP+FP+FN), precision TP/(TP+FP), recall TP/(TP+FN);
  F1 = 2 * mean precision * mean recall / (mean precision + mean recall)
  (the paper's; NOT the mean of per-image F1), 0 when both are 0.

Unknown labels (`alm_tf.data.labels.UNKNOWN`, -1; any negative value) are
not counted: per attribute, TP/FN/TN/FP and the positive ratio use the
known labels only (an attribute with no known label in a split has an
undefined mA_m and is left out of mA, as the guard above does); per image,
TP/FP/FN run over that image's known attributes, and the instance means
are taken over the images with at least one known label
(`num_labelled_images`; an image with none says nothing about the model).
On fully labelled data every number is what it was without this rule.

`compute_metrics` is the numpy reference; `ALMMetrics` is a streaming
`keras.metrics.Metric` that accumulates the same sufficient statistics
(per-attribute TP/FN/TN/FP and the instance sums) batch by batch and
returns the same numbers.
"""

from __future__ import annotations

from typing import Mapping

import keras
import numpy as np
import tensorflow as tf

SUMMARY_KEYS = ("mA", "accuracy", "precision", "recall", "f1")
COUNT_KEYS = ("tp", "fn", "tn", "fp", "accuracy_sum", "precision_sum",
              "recall_sum", "num_images", "num_labelled_images")


def _safe_div(num, den):
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                    np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def label_masks(labels) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) boolean masks of labels 0 / 1 / UNKNOWN (< 0)."""
    labels = np.asarray(labels, np.float64)
    positive = labels > 0.5
    return positive, (labels >= 0) & ~positive


def counts_numpy(labels, preds) -> dict[str, np.ndarray]:
    """Sufficient statistics of labels (0, 1, -1 = unknown) and 0/1 predictions (N, M)."""
    preds = np.asarray(preds).astype(bool)
    if np.ndim(labels) != 2 or np.shape(labels) != preds.shape:
        raise ValueError(
            "labels and predictions must both have shape (N, M). Received: "
            f"labels.shape={np.shape(labels)}, predictions.shape={preds.shape}"
        )
    pos, neg = label_masks(labels)
    tp = pos & preds
    fp = neg & preds
    fn = pos & ~preds
    tp_i, fp_i, fn_i = tp.sum(1), fp.sum(1), fn.sum(1)
    return {
        "tp": tp.sum(0).astype(np.float64),
        "fn": fn.sum(0).astype(np.float64),
        "tn": (neg & ~preds).sum(0).astype(np.float64),
        "fp": fp.sum(0).astype(np.float64),
        "accuracy_sum": float(_safe_div(tp_i, tp_i + fp_i + fn_i).sum()),
        "precision_sum": float(_safe_div(tp_i, tp_i + fp_i).sum()),
        "recall_sum": float(_safe_div(tp_i, tp_i + fn_i).sum()),
        "num_images": float(preds.shape[0]),
        "num_labelled_images": float((pos | neg).any(1).sum()),
    }


def metrics_from_counts(counts: Mapping[str, np.ndarray]) -> dict:
    """Summary and per-attribute metrics from accumulated counts."""
    tp, fn, tn, fp = (np.asarray(counts[k], np.float64) for k in ("tp", "fn", "tn", "fp"))
    pos, neg = tp + fn, tn + fp
    n = float(counts["num_images"])
    labelled = float(counts["num_labelled_images"])
    known = pos + neg
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_recall = np.where(pos > 0, tp / np.maximum(pos, 1), np.nan)
        neg_recall = np.where(neg > 0, tn / np.maximum(neg, 1), np.nan)
    attr_ma = np.where(
        (pos > 0) & (neg > 0), (pos_recall + neg_recall) / 2,
        np.where(pos > 0, pos_recall, neg_recall),
    )
    defined = ~np.isnan(attr_ma)
    mean_ma = float(attr_ma[defined].mean()) if defined.any() else 0.0
    positive_ratio = np.where(known > 0, pos / np.maximum(known, 1), np.nan)
    precision = counts["precision_sum"] / labelled if labelled else 0.0
    recall = counts["recall_sum"] / labelled if labelled else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "mA": mean_ma,
        "accuracy": float(counts["accuracy_sum"] / labelled) if labelled else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "num_images": int(n),
        "num_labelled_images": int(labelled),
        "per_attribute": {
            "num_known": known,
            "positive_ratio": positive_ratio,
            "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "positive_recall": pos_recall,
            "negative_recall": neg_recall,
            "mA": attr_ma,
        },
    }


def compute_metrics(labels, scores, threshold=0.5, *, from_logits: bool = False) -> dict:
    """All metrics of one split.

    Args:
      labels: (N, M) ground truth: 0, 1 or UNKNOWN (-1), which is not counted.
      scores: (N, M) probabilities, or logits with `from_logits=True`.
      threshold: a scalar or an (M,) array of per-attribute thresholds on
        the probability; predicted present when probability > threshold.
      from_logits: whether `scores` are logits.

    Returns:
      dict with `mA`, `accuracy`, `precision`, `recall`, `f1` (floats),
      `num_images`, `num_labelled_images` (images with a known label), and
      `per_attribute` (arrays of length M: `num_known` (known labels),
      `positive_ratio` (over the known labels; NaN when none), `tp`, `fn`,
      `tn`, `fp`, `positive_recall`, `negative_recall`, `mA` (NaN when
      the attribute has no known label)).
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    if labels.shape[0] == 0:
        raise ValueError("Cannot compute metrics of an empty split (0 images).")
    probs = sigmoid(scores) if from_logits else scores
    threshold = np.asarray(threshold, np.float64)
    if threshold.ndim not in (0, 1) or (
        threshold.ndim == 1 and threshold.shape[0] != scores.shape[-1]
    ):
        raise ValueError(
            "threshold must be a scalar or have one value per attribute "
            f"({scores.shape[-1]}). Received: threshold.shape={threshold.shape}"
        )
    return metrics_from_counts(counts_numpy(labels, probs > threshold))


def batch_counts(labels: tf.Tensor, logits: tf.Tensor, threshold=0.5) -> dict:
    """TF version of `counts_numpy` for one batch of logits (float32 sums);
    labels 0, 1 or UNKNOWN (-1, not counted)."""
    labels = tf.cast(labels, tf.float32)
    pos = labels > 0.5
    neg = (labels >= 0.0) & ~pos
    probs = tf.sigmoid(tf.cast(logits, tf.float32))
    preds = probs > tf.cast(threshold, tf.float32)
    f = lambda x: tf.cast(x, tf.float32)  # noqa: E731
    tp, fp = f(pos & preds), f(neg & preds)
    fn, tn = f(pos & ~preds), f(neg & ~preds)
    tp_i, fp_i, fn_i = (tf.reduce_sum(x, 1) for x in (tp, fp, fn))
    return {
        "tp": tf.reduce_sum(tp, 0), "fn": tf.reduce_sum(fn, 0),
        "tn": tf.reduce_sum(tn, 0), "fp": tf.reduce_sum(fp, 0),
        "accuracy_sum": tf.reduce_sum(tf.math.divide_no_nan(tp_i, tp_i + fp_i + fn_i)),
        "precision_sum": tf.reduce_sum(tf.math.divide_no_nan(tp_i, tp_i + fp_i)),
        "recall_sum": tf.reduce_sum(tf.math.divide_no_nan(tp_i, tp_i + fn_i)),
        "num_images": tf.cast(tf.shape(labels)[0], tf.float32),
        "num_labelled_images": tf.reduce_sum(f(tf.reduce_any(pos | neg, axis=1))),
    }


@keras.saving.register_keras_serializable(package="alm_tf")
class ALMMetrics(keras.metrics.Metric):
    """Streaming mA and instance metrics (same definitions as the module).

    Args:
      num_attributes: M.
      threshold: probability threshold (scalar or (M,) list).
      from_logits: whether `y_pred` holds logits (default) or probabilities.

    Call arguments (`update_state`): `y_true` (N, M) 0/1 or -1 (unknown,
    not counted), `y_pred` (N, M).
    `update_from_counts(counts)` adds statistics already computed by
    `batch_counts` (e.g. summed over replicas by the trainer).

    Returns (`result`): dict with `mA`, `accuracy`, `precision`, `recall`,
    `f1` as float32 scalars.
    """

    def __init__(self, num_attributes, threshold=0.5, from_logits=True,
                 name="alm_metrics", **kwargs):
        super().__init__(name=name, **kwargs)
        if int(num_attributes) < 1:
            raise ValueError(f"num_attributes must be >= 1. Received: {num_attributes}")
        self.num_attributes = int(num_attributes)
        self.threshold = threshold
        self.from_logits = bool(from_logits)
        self._vars = {}
        for key in COUNT_KEYS:
            shape = (self.num_attributes,) if key in ("tp", "fn", "tn", "fp") else ()
            self._vars[key] = self.add_variable(
                shape=shape, initializer="zeros", dtype="float32",
                aggregation="sum", name=key)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("ALMMetrics does not support sample_weight.")
        logits = y_pred
        if not self.from_logits:
            p = tf.clip_by_value(tf.cast(y_pred, tf.float32), 1e-7, 1 - 1e-7)
            logits = tf.math.log(p) - tf.math.log1p(-p)
        self.update_from_counts(batch_counts(y_true, logits, self.threshold))

    def update_from_counts(self, counts):
        for key, var in self._vars.items():
            var.assign_add(tf.cast(counts[key], tf.float32))

    def result(self):
        v = {k: tf.convert_to_tensor(var) for k, var in self._vars.items()}
        pos, neg = v["tp"] + v["fn"], v["tn"] + v["fp"]
        pos_recall = tf.math.divide_no_nan(v["tp"], pos)
        neg_recall = tf.math.divide_no_nan(v["tn"], neg)
        both = (pos > 0) & (neg > 0)
        attr_ma = tf.where(both, (pos_recall + neg_recall) / 2,
                           tf.where(pos > 0, pos_recall, neg_recall))
        defined = tf.cast((pos > 0) | (neg > 0), tf.float32)
        mean_ma = tf.math.divide_no_nan(tf.reduce_sum(attr_ma * defined),
                                        tf.reduce_sum(defined))
        n = v["num_labelled_images"]
        precision = tf.math.divide_no_nan(v["precision_sum"], n)
        recall = tf.math.divide_no_nan(v["recall_sum"], n)
        return {
            "mA": mean_ma,
            "accuracy": tf.math.divide_no_nan(v["accuracy_sum"], n),
            "precision": precision,
            "recall": recall,
            "f1": tf.math.divide_no_nan(2 * precision * recall, precision + recall),
        }

    def get_config(self):
        threshold = self.threshold
        if isinstance(threshold, np.ndarray):
            threshold = threshold.tolist()
        return {**super().get_config(), "num_attributes": self.num_attributes,
                "threshold": threshold, "from_logits": self.from_logits}
