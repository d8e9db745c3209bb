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

`metrics.json` also says how many records were evaluated (`records`:
`expected` by the manifest, `evaluated`); with `allow_corrupt_records`
missing or corrupt records are skipped (and listed there) instead of
failing the evaluation (`alm_tf.data.records`).

Unknown labels (-1) are not counted (see `alm_tf.evaluation.metrics`); the
per-attribute table and CSV show how many labels of each attribute were
known (`num_known`). A merged data set (`alm_tf.data.merge`, its manifest
lists `sources`) is also evaluated per source data set: `per_source` in
metrics.json and `per_source_attribute.csv`.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from alm_tf import artifacts, data as data_lib, names
from alm_tf.evaluation import metrics
from alm_tf.data import records

BRANCH_KEYS = names.BRANCH_OUTPUTS
CSV_COLUMNS = ("name", "num_known", "positive_ratio", "TP", "FN", "TN", "FP",
               "positive_recall", "negative_recall", "mA", "threshold")
PER_SOURCE_CSV = "per_source_attribute.csv"
PER_SOURCE_COLUMNS = ("source",) + CSV_COLUMNS[:-1]


def _batches(dataset, data_dir: Optional[str], split: Optional[str]):
    """The dataset's batches; a record that fails to read is one line (`records.RecordReadError`)."""
    iterator = iter(dataset)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            raise records.read_error(e, data_dir or "the data", split or "?") from None


def collect_outputs(predict_fn: Callable, dataset, *, return_sources: bool = False,
                    data_dir: Optional[str] = None, split: Optional[str] = None):
    """Runs `predict_fn` over (images, labels[, sources]) batches; concatenates.

    Returns (labels, outputs), or (labels, outputs, sources) with
    `return_sources` (the dataset must then yield the sources, as
    `make_dataset(..., with_sources=True)` does; sources as str).
    `data_dir` and `split` name the data in the error of a record that
    cannot be read.
    """
    labels, outputs, sources = [], {}, []
    for batch in _batches(dataset, data_dir, split):
        images, batch_labels = batch[0], batch[1]
        if return_sources:
            if len(batch) < 3:
                raise ValueError("return_sources needs a dataset of (images, labels, sources)")
            sources.extend(s.decode("utf-8") for s in np.asarray(batch[2]).tolist())
        result = predict_fn(images)
        labels.append(np.asarray(batch_labels))
        for key, value in result.items():
            if key == "boxes":
                continue
            outputs.setdefault(key, []).append(np.asarray(tf.cast(value, tf.float32)))
    if not labels:
        raise ValueError("The evaluation split produced no examples.")
    collected = np.concatenate(labels), {k: np.concatenate(v) for k, v in outputs.items()}
    return (*collected, np.asarray(sources, dtype=object)) if return_sources else collected


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


def _json_list(values) -> list:
    """An array as a JSON-safe list: NaN (undefined) becomes None."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, np.float64)]


def evaluate_outputs(labels, outputs: dict, thresholds=0.5, sources=None) -> dict:
    """The metrics.json payload (without per-attribute arrays) + details.

    With `sources` ((N,) source data set name of each image), the payload
    also has `per_source` (each source's summary at the same thresholds,
    image counts and per-attribute `num_known` / `mA`, None where an
    attribute has no known label in that source), and the details
    `per_source` (name -> `metrics.compute_metrics` result).
    """
    probs = branch_probabilities(outputs)
    fused = metrics.compute_metrics(labels, probs["fused"], thresholds)
    report = {key: fused[key] for key in metrics.SUMMARY_KEYS}
    report["num_images"] = fused["num_images"]
    report["num_labelled_images"] = fused["num_labelled_images"]
    report["branches"] = {}
    for name, value in probs.items():
        if name == "fused":
            continue
        result = metrics.compute_metrics(labels, value, 0.5)
        report["branches"][name] = {k: result[k] for k in metrics.SUMMARY_KEYS}
    details = {"report": report, "fused": fused}
    if sources is not None:
        sources = np.asarray(sources, dtype=object)
        if sources.shape != (np.shape(labels)[0],):
            raise ValueError(f"sources must name the source of each of the {np.shape(labels)[0]} images. "
                             f"Received: sources.shape={sources.shape}")
        labels = np.asarray(labels)
        per_source, report["per_source"] = {}, {}
        for name in sorted(set(sources.tolist())):
            rows = sources == name
            result = metrics.compute_metrics(labels[rows], probs["fused"][rows], thresholds)
            per_source[name] = result
            report["per_source"][name] = {
                **{k: result[k] for k in metrics.SUMMARY_KEYS},
                "num_images": result["num_images"],
                "num_labelled_images": result["num_labelled_images"],
                "num_known": [int(v) for v in result["per_attribute"]["num_known"]],
                "per_attribute_mA": _json_list(result["per_attribute"]["mA"]),
            }
        details["per_source"] = per_source
    return details


def tune_thresholds(labels, probs) -> np.ndarray:
    """Per-attribute threshold maximising that attribute's mA.

    Candidates: 0.5 and every distinct probability of the attribute's
    images with a known label (the rule is probability > threshold), plus 0
    (all predicted present). Ties go to the candidate closest to 0.5.
    Unknown labels (-1) are ignored; an attribute with no known label keeps
    0.5.
    """
    positive, negative = metrics.label_masks(labels)
    probs = np.asarray(probs, np.float64)
    out = np.full(positive.shape[1], 0.5)
    for m in range(positive.shape[1]):
        pos, neg = np.sort(probs[positive[:, m], m]), np.sort(probs[negative[:, m], m])
        cands = np.unique(np.concatenate([[0.0, 0.5], pos, neg]))
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


def _attribute_row(per: dict, m: int) -> list:
    return [int(per["num_known"][m]), f"{per['positive_ratio'][m]:.6f}", int(per["tp"][m]),
            int(per["fn"][m]), int(per["tn"][m]), int(per["fp"][m]),
            f"{per['positive_recall'][m]:.6f}", f"{per['negative_recall'][m]:.6f}",
            f"{per['mA'][m]:.6f}"]


def write_report(output_dir: str, payload: dict, fused: dict,
                 attributes: Sequence[str], thresholds, per_source: Optional[dict] = None) -> None:
    """Writes metrics.json and per_attribute.csv (and, with `per_source`,
    the details of `evaluate_outputs`, per_source_attribute.csv)."""
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
            writer.writerow([name, *_attribute_row(per, m), f"{thresholds[m]:.6f}"])
    if per_source:
        with open(os.path.join(output_dir, PER_SOURCE_CSV), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(PER_SOURCE_COLUMNS)
            for source, result in per_source.items():
                for m, name in enumerate(attributes):
                    writer.writerow([source, name, *_attribute_row(result["per_attribute"], m)])


def format_table(payload: dict, fused: dict, attributes: Sequence[str]) -> str:
    """A readable text table of the summary, branches, sources (fused output,
    for a merged data set) and attributes (`known`: labels not unknown)."""
    lines = ["", f"{'output':<12}" + "".join(f"{k:>10}" for k in metrics.SUMMARY_KEYS)]
    rows = [("fused", payload)] + list(payload["branches"].items())
    for name, values in rows:
        lines.append(f"{name:<12}" + "".join(f"{values[k]:>10.4f}" for k in metrics.SUMMARY_KEYS))
    if payload.get("per_source"):
        lines += ["", f"{'source':<12}" + "".join(f"{k:>10}" for k in metrics.SUMMARY_KEYS) + f"{'images':>8}"]
        for name, values in payload["per_source"].items():
            lines.append(f"{name:<12}" + "".join(f"{values[k]:>10.4f}" for k in metrics.SUMMARY_KEYS)
                         + f"{values['num_images']:>8d}")
    per = fused["per_attribute"]
    width = max([len("attribute")] + [len(a) for a in attributes])
    lines += ["", f"{'attribute':<{width}}  {'known':>6} {'pos':>6} {'TP':>6} {'FN':>6} {'TN':>6} "
              f"{'FP':>6} {'pos_rec':>8} {'neg_rec':>8} {'mA':>7}"]
    for m, name in enumerate(attributes):
        lines.append(
            f"{name:<{width}}  {int(per['num_known'][m]):6d} {per['positive_ratio'][m]:6.3f} {int(per['tp'][m]):6d} "
            f"{int(per['fn'][m]):6d} {int(per['tn'][m]):6d} {int(per['fp'][m]):6d} "
            f"{per['positive_recall'][m]:8.4f} {per['negative_recall'][m]:8.4f} "
            f"{per['mA'][m]:7.4f}")
    return "\n".join(lines)


def run_evaluation(data_dir: str, split: str, model: str, output_dir: str, *,
                   batch_size: int = 64, which: str = "final",
                   tune: bool = False, threshold_split: str = "val",
                   allow_corrupt_records: bool = False, data_module=None) -> dict:
    """The whole `alm-evaluate` job; returns the metrics.json payload.

    Writes metrics.json, per_attribute.csv (per_source_attribute.csv for a
    merged data set) and, with `tune`, thresholds.json into `output_dir`;
    the tuned thresholds go into the model dir too, last, once everything
    else succeeded.
    """
    data_module = data_module or data_lib
    manifest = data_module.read_manifest(data_dir)
    attributes = list(manifest["attributes"])
    loaded = artifacts.load(model, which=which)
    if list(loaded.attributes) != attributes:
        raise ValueError(
            f"The model's attributes differ from those of {data_dir} "
            f"({len(loaded.attributes)} vs {len(attributes)} names).")
    scores = score_function(loaded)
    splits = [threshold_split, split] if tune else [split]
    checked = {name: records.check_split(data_dir, name, manifest, allow_corrupt=allow_corrupt_records)
               for name in splits if name in manifest["splits"]}

    by_source = bool(data_module.manifest_sources(manifest))  # a merged data set

    def outputs_of(split_name, with_sources=False):
        ds = data_module.make_dataset(data_dir, split_name, batch_size=batch_size,
                                      image_size=loaded.image_size, training=False, normalize=False,
                                      with_sources=with_sources,
                                      allow_corrupt_records=allow_corrupt_records,
                                      exif_orientation=loaded.exif_orientation)
        return collect_outputs(scores, ds, return_sources=with_sources, data_dir=data_dir,
                               split=split_name)

    thresholds = np.full(len(attributes), 0.5)
    source = "0.5"
    if tune:
        val_labels, val_outputs = outputs_of(threshold_split)
        thresholds = tune_thresholds(val_labels, branch_probabilities(val_outputs)["fused"])
        source = f"tuned on {threshold_split}"
    labels, outputs, *sources = outputs_of(split, with_sources=by_source)
    result = evaluate_outputs(labels, outputs, thresholds, sources=sources[0] if sources else None)
    payload = result["report"]
    payload.update({"split": split, "model": model, "thresholds": source})
    payload["records"] = _records_report(checked[split], len(labels))
    if tune:
        payload["threshold_records"] = _records_report(checked[threshold_split], len(val_labels))
        at_half = metrics.compute_metrics(labels, branch_probabilities(outputs)["fused"])
        payload["at_threshold_0.5"] = {k: at_half[k] for k in metrics.SUMMARY_KEYS}
    write_report(output_dir, payload, result["fused"], attributes, thresholds,
                 per_source=result.get("per_source"))
    if tune:
        artifacts.write_thresholds(os.path.join(output_dir, artifacts.THRESHOLDS_NAME), attributes,
                                   thresholds, threshold_split)
        if loaded.model_dir:
            artifacts.write_thresholds(artifacts.thresholds_path(loaded.model_dir), attributes,
                                       thresholds, threshold_split)
    print(format_table(payload, result["fused"], attributes))
    return payload


def _records_report(checked: "records.SplitRecords", evaluated: int) -> dict:
    """metrics.json's `records`: the manifest's count, what was evaluated, what was skipped."""
    report = {"expected": checked.expected, "evaluated": int(evaluated)}
    if evaluated != checked.expected or checked.problems:
        report["skipped"] = checked.expected - int(evaluated)
        report["problems"] = list(checked.problems)
    return report
