"""Evaluation of a trained ALM model: metrics report and threshold tuning.

Every model source `alm_tf.artifacts.load` accepts can be evaluated; the
split's images reach it as RGB 0..255 at its input size (the input
pipeline's decode and resize, the model's own normalization). A Keras
model (model dir, `.keras`) gives every branch's logits; a SavedModel its
fused `probabilities` only (so no per-branch results).

Report (`write_report`): `metrics.json` with top-level `mA`, `accuracy`,
`precision`, `recall`, `f1` for the fused output (at the thresholds used),
`branches` (each supervised branch, `max_fused` and `mean_fused` of the
branch logits, all at 0.5), and `per_attribute.csv`.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from alm_tf import artifacts, data as data_lib, metrics, names

BRANCH_KEYS = names.BRANCH_OUTPUTS
CSV_COLUMNS = ("name", "positive_ratio", "TP", "FN", "TN", "FP",
               "positive_recall", "negative_recall", "mA", "threshold")


def collect_outputs(predict_fn: Callable, dataset) -> tuple[np.ndarray, dict]:
    """Runs `predict_fn` over (images, labels) batches; concatenates outputs."""
    labels, outputs = [], {}
    for images, batch_labels in dataset:
        result = predict_fn(images)
        labels.append(np.asarray(batch_labels))
        for key, value in result.items():
            if key == "boxes":
                continue
            outputs.setdefault(key, []).append(np.asarray(tf.cast(value, tf.float32)))
    if not labels:
        raise ValueError("The evaluation split produced no examples.")
    return np.concatenate(labels), {k: np.concatenate(v) for k, v in outputs.items()}


def summarize(labels, scores, threshold=0.5, from_logits=True) -> dict:
    return metrics.compute_metrics(labels, scores, threshold, from_logits=from_logits)


def branch_probabilities(outputs: dict) -> dict[str, np.ndarray]:
    """Probabilities of the fused output, each branch, max- and mean-fusion."""
    if "probabilities" in outputs:
        return {"fused": outputs["probabilities"]}
    branches = [k for k in BRANCH_KEYS if k in outputs]
    result = {"fused": metrics.sigmoid(outputs["logits"])}
    for key in branches:
        result[key] = metrics.sigmoid(outputs[key])
    stacked = np.stack([outputs[k] for k in branches])
    result["max_fused"] = metrics.sigmoid(stacked.max(0))
    result["mean_fused"] = metrics.sigmoid(stacked.mean(0))
    return result


def evaluate_outputs(labels, outputs: dict, thresholds=0.5) -> dict:
    """The metrics.json payload (without per-attribute arrays) + details."""
    probs = branch_probabilities(outputs)
    fused = metrics.compute_metrics(labels, probs["fused"], thresholds)
    report = {key: fused[key] for key in metrics.SUMMARY_KEYS}
    report["num_images"] = fused["num_images"]
    report["branches"] = {}
    for name, value in probs.items():
        if name == "fused":
            continue
        result = metrics.compute_metrics(labels, value, 0.5)
        report["branches"][name] = {k: result[k] for k in metrics.SUMMARY_KEYS}
    return {"report": report, "fused": fused}


def tune_thresholds(labels, probs) -> np.ndarray:
    """Per-attribute threshold maximising that attribute's mA.

    Candidates: 0.5 and every distinct probability of the attribute (the
    rule is probability > threshold), plus 0 (all predicted present). Ties
    go to the candidate closest to 0.5.
    """
    labels = np.asarray(labels).astype(bool)
    probs = np.asarray(probs, np.float64)
    out = np.full(labels.shape[1], 0.5)
    for m in range(labels.shape[1]):
        pos, neg = np.sort(probs[labels[:, m], m]), np.sort(probs[~labels[:, m], m])
        cands = np.unique(np.concatenate([[0.0, 0.5], probs[:, m]]))
        terms = []
        if len(pos):
            terms.append((len(pos) - np.searchsorted(pos, cands, "right")) / len(pos))
        if len(neg):
            terms.append(np.searchsorted(neg, cands, "right") / len(neg))
        if not terms:
            continue
        score = np.mean(terms, axis=0)
        best = np.flatnonzero(score >= score.max() - 1e-12)
        out[m] = cands[best[np.argmin(np.abs(cands[best] - 0.5))]]
    return out


def score_function(loaded: artifacts.LoadedModel) -> Callable:
    """What the metrics read from a loaded model: every branch's logits, else probabilities."""
    keep = ((*names.BRANCH_OUTPUTS, names.FUSED_OUTPUT) if loaded.model is not None
            else ("probabilities",))
    return lambda images: {k: v for k, v in loaded.predict(images).items() if k in keep}


def write_report(output_dir: str, payload: dict, fused: dict,
                 attributes: Sequence[str], thresholds) -> None:
    """Writes metrics.json and per_attribute.csv."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    per = fused["per_attribute"]
    thresholds = np.broadcast_to(np.asarray(thresholds, np.float64), per["mA"].shape)
    with open(os.path.join(output_dir, "per_attribute.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for m, name in enumerate(attributes):
            writer.writerow([
                name, f"{per['positive_ratio'][m]:.6f}", int(per["tp"][m]),
                int(per["fn"][m]), int(per["tn"][m]), int(per["fp"][m]),
                f"{per['positive_recall'][m]:.6f}", f"{per['negative_recall'][m]:.6f}",
                f"{per['mA'][m]:.6f}", f"{thresholds[m]:.6f}"])


def format_table(payload: dict, fused: dict, attributes: Sequence[str]) -> str:
    """A readable text table of the summary, branches and attributes."""
    lines = ["", f"{'output':<12}" + "".join(f"{k:>10}" for k in metrics.SUMMARY_KEYS)]
    rows = [("fused", payload)] + list(payload["branches"].items())
    for name, values in rows:
        lines.append(f"{name:<12}" + "".join(f"{values[k]:>10.4f}" for k in metrics.SUMMARY_KEYS))
    per = fused["per_attribute"]
    width = max([len("attribute")] + [len(a) for a in attributes])
    lines += ["", f"{'attribute':<{width}}  {'pos':>6} {'TP':>6} {'FN':>6} {'TN':>6} "
              f"{'FP':>6} {'pos_rec':>8} {'neg_rec':>8} {'mA':>7}"]
    for m, name in enumerate(attributes):
        lines.append(
            f"{name:<{width}}  {per['positive_ratio'][m]:6.3f} {int(per['tp'][m]):6d} "
            f"{int(per['fn'][m]):6d} {int(per['tn'][m]):6d} {int(per['fp'][m]):6d} "
            f"{per['positive_recall'][m]:8.4f} {per['negative_recall'][m]:8.4f} "
            f"{per['mA'][m]:7.4f}")
    return "\n".join(lines)


def run_evaluation(data_dir: str, split: str, model: str, output_dir: str, *,
                   batch_size: int = 64, which: str = "final",
                   tune: bool = False, threshold_split: str = "val",
                   data_module=None) -> dict:
    """The whole `alm-evaluate` job; returns the metrics.json payload."""
    data_module = data_module or data_lib
    manifest = data_module.read_manifest(data_dir)
    attributes = list(manifest["attributes"])
    loaded = artifacts.load(model, which=which)
    if list(loaded.attributes) != attributes:
        raise ValueError(
            f"The model's attributes differ from those of {data_dir} "
            f"({len(loaded.attributes)} vs {len(attributes)} names).")
    scores = score_function(loaded)

    def outputs_of(split_name):
        ds = data_module.make_dataset(data_dir, split_name, batch_size=batch_size,
                                      image_size=loaded.image_size, training=False, normalize=False)
        return collect_outputs(scores, ds)

    thresholds = np.full(len(attributes), 0.5)
    source = "0.5"
    if tune:
        val_labels, val_outputs = outputs_of(threshold_split)
        thresholds = tune_thresholds(val_labels, branch_probabilities(val_outputs)["fused"])
        source = f"tuned on {threshold_split}"
        os.makedirs(output_dir, exist_ok=True)
        targets = [os.path.join(output_dir, artifacts.THRESHOLDS_NAME)]
        if loaded.model_dir:
            targets.append(artifacts.thresholds_path(loaded.model_dir))
        for target in targets:
            artifacts.write_thresholds(target, attributes, thresholds, threshold_split)
    labels, outputs = outputs_of(split)
    result = evaluate_outputs(labels, outputs, thresholds)
    payload = result["report"]
    payload.update({"split": split, "model": model, "thresholds": source})
    if tune:
        at_half = metrics.compute_metrics(labels, branch_probabilities(outputs)["fused"])
        payload["at_threshold_0.5"] = {k: at_half[k] for k in metrics.SUMMARY_KEYS}
    write_report(output_dir, payload, result["fused"], attributes, thresholds)
    print(format_table(payload, result["fused"], attributes))
    return payload
