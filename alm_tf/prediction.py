"""Predictions on image files: any model form, CSV + localization pictures.

`load_image_predictor(model, ...)` accepts
  - a SavedModel dir from `alm-export` (`E/N/` or the export root `E/`,
    whose highest numeric version is used): its `serving_default`
    signature takes the encoded bytes, so preprocessing is the model's own;
  - a `.keras` file: attribute names from an attributes file (one name a
    line), a sidecar `<stem>.attributes.txt` or a sibling `config.json`
    (never invented); preprocessing from
    `alm_tf.data.preprocessing` at the model's input size;
  - a model dir (config.json + final.keras / best.keras);
  - `server="host:port"` (gRPC) or `server="http://host:port"` (REST): TF
    Serving through `alm_tf.serving.client`.

Every predictor maps a list of encoded images (bytes) to `probabilities`
(N, M), `labels` (N, M) and, for ALM models, `boxes` (N, L, M, 4).
`predict_files` runs one over image files and writes `predictions.csv` (a
row per image: path, then `<attr>_prob` and `<attr>` label per attribute)
and a localization PNG per image; unreadable images are reported and
skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImagePredictor",
    "PredictionResult",
    "find_images",
    "load_image_predictor",
    "predict_files",
    "read_attributes_file",
    "resolve_saved_model_dir",
]


@dataclasses.dataclass
class ImagePredictor:
    """`fn(list of encoded images) -> {probabilities, labels[, boxes]}` (numpy)."""

    fn: Callable[[list[bytes]], dict]
    attributes: list[str]
    source: str
    kind: str  # "saved_model", "keras" or "server"

    def __call__(self, encoded: list[bytes]) -> dict:
        return self.fn(encoded)


@dataclasses.dataclass
class PredictionResult:
    """What `predict_files` did."""

    csv_path: str
    pictures: list[str]
    images: list[str]  # predicted images, in CSV order
    skipped: list[tuple[str, str]]  # (path, reason)
    outputs: dict  # concatenated predictor outputs of `images`


def read_attributes_file(path: str) -> list[str]:
    """Attribute names: one a line (txt), a JSON list, or a JSON object with `attributes`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        payload = json.loads(text)
        names = payload["attributes"] if isinstance(payload, dict) else payload
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    names = [str(n) for n in names]
    if not names:
        raise ValueError(f"no attribute names in {path}")
    return names


def resolve_saved_model_dir(path: str) -> Optional[str]:
    """`path` if it holds saved_model.pb, else its highest numeric version subdir, else None."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        return None
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        return None
    return os.path.join(path, max(versions, key=int))


def find_images(spec: str) -> list[str]:
    """Image files named by a glob, a folder (its image files) or one file, sorted.

    Raises:
        FileNotFoundError: nothing matches.
    """
    if os.path.isdir(spec):
        paths = [os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(IMAGE_EXTENSIONS)]
        paths = [p for p in paths if os.path.isfile(p)]
        if not paths:
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder {spec!r}")
        return sorted(paths)
    if os.path.isfile(spec):
        return [spec]
    if glob.has_magic(spec):
        paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        if not paths:
            raise FileNotFoundError(f"no files match {spec!r}")
        return paths
    raise FileNotFoundError(f"no such file or folder: {spec!r}")


def _sibling_attributes(keras_path: str) -> Optional[list[str]]:
    """Names from `<stem>.attributes.txt` (alm-import-torch) or a sibling config.json."""
    sidecar = keras_path[: -len(".keras")] + ".attributes.txt"
    if os.path.isfile(sidecar):
        return read_attributes_file(sidecar)
    config = os.path.join(os.path.dirname(os.path.abspath(keras_path)), "config.json")
    if os.path.isfile(config):
        with open(config, encoding="utf-8") as f:
            names = json.load(f).get("attributes")
        if names:
            return list(names)
    return None


def _keras_predictor(path: str, attributes: Optional[list[str]], thresholds=None) -> ImagePredictor:
    import keras
    import tensorflow as tf

    import alm_tf  # noqa: F401  registers the custom layers
    from alm_tf.data import preprocessing

    model = keras.saving.load_model(path, compile=False)
    height, width = (int(d) for d in model.inputs[0].shape[1:3])
    num = int(model.outputs[0].shape[-1]) if not isinstance(model.output, dict) else int(model.output["logits"].shape[-1])
    if attributes is None:
        raise ValueError(f"no attribute names for {path}: pass --attributes_file (or keep the "
                         "model's config.json beside it)")
    if len(attributes) != num:
        raise ValueError(f"{len(attributes)} attribute names for a model with {num} outputs ({path})")
    threshold = np.broadcast_to(np.asarray(0.5 if thresholds is None else thresholds, np.float32), (num,))
    forward = tf.function(lambda x: model(x, training=False))

    def fn(encoded: list[bytes]) -> dict:
        images = tf.stack([preprocessing.preprocess_images(preprocessing.decode_image(e), height, width) for e in encoded])
        out = forward(images)
        probs = tf.sigmoid(out["logits"]).numpy()
        result = {"probabilities": probs, "labels": (probs > threshold).astype(np.int32)}
        if "boxes" in out:
            result["boxes"] = out["boxes"].numpy()
        return result

    return ImagePredictor(fn, list(attributes), path, "keras")


def _saved_model_predictor(path: str, attributes: Optional[list[str]]) -> ImagePredictor:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    signatures = loaded.signatures
    if "serving_default" not in signatures:
        raise ValueError(f"SavedModel {path} has no serving_default signature")
    signature = signatures["serving_default"]
    if attributes is None:
        asset = os.path.join(path, "assets", "attributes.txt")
        if os.path.isfile(asset):
            attributes = read_attributes_file(asset)
    input_name = next(iter(signature.structured_input_signature[1]))

    def fn(encoded: list[bytes]) -> dict:
        out = signature(**{input_name: tf.constant(encoded, tf.string)})
        return {k: v.numpy() for k, v in out.items() if k in ("probabilities", "labels", "boxes")}

    if attributes is None:
        num = int(signature.structured_outputs["probabilities"].shape[-1])
        attributes = [f"attribute_{m}" for m in range(num)]
    predictor = ImagePredictor(fn, list(attributes), path, "saved_model")
    predictor.loaded = loaded  # keeps the resources alive
    return predictor


def _server_predictor(server: str, attributes: Optional[list[str]], model_name: str) -> ImagePredictor:
    """TF Serving: `host:port` (gRPC) or `http://host:port` (REST, needs the names)."""
    from alm_tf.serving import client

    rest = server.startswith(("http://", "https://"))
    if attributes is None:
        if rest:
            raise ValueError("a REST --server needs the attribute names (--attributes_file)")
        try:
            attributes = list(client.fetch_metadata_grpc(target=server, model_name=model_name)["attributes"])
        except client.ServingError as e:
            raise ValueError(f"TF Serving at {server}: {e}") from None

    def fn(encoded: list[bytes]) -> dict:
        try:
            if rest:
                preds = client.predict_rest(encoded, attributes, url=server, model_name=model_name)
            else:
                preds = client.predict_grpc(encoded, attributes, target=server, model_name=model_name)
        except client.ServingError as e:
            raise ValueError(f"TF Serving at {server}: {e}") from None
        out = {
            "probabilities": np.array([[p.probabilities[a] for a in attributes] for p in preds], np.float32),
            "labels": np.array([[p.labels[a] for a in attributes] for p in preds], np.int32),
        }
        if preds and preds[0].boxes is not None:
            out["boxes"] = np.stack([np.asarray(p.boxes, np.float32) for p in preds])
        return out

    return ImagePredictor(fn, list(attributes), server, "server")


def load_image_predictor(model: Optional[str] = None, *, attributes_file: Optional[str] = None,
                         server: Optional[str] = None, model_name: str = "alm",
                         which: str = "final") -> ImagePredictor:
    """A predictor for a SavedModel, a .keras file, a model dir or a TF Serving address.

    Raises:
        FileNotFoundError: the model does not exist or is of no known form.
        ValueError: the attribute names do not fit the model.
    """
    attributes = read_attributes_file(attributes_file) if attributes_file else None
    if server:
        return _server_predictor(server, attributes, model_name)
    if not model:
        raise FileNotFoundError("no model given")
    if not os.path.exists(model):
        raise FileNotFoundError(f"model not found: {model!r}")
    saved = resolve_saved_model_dir(model)
    if saved:
        return _saved_model_predictor(saved, attributes)
    if os.path.isfile(model) and model.endswith(".keras"):
        thresholds = None
        names = attributes or _sibling_attributes(model)
        if names is not None:
            from alm_tf.training import model_dir as md

            thresholds = md.read_thresholds(os.path.dirname(os.path.abspath(model)), names)
        return _keras_predictor(model, names, thresholds)
    if os.path.isfile(os.path.join(model, "config.json")):
        from alm_tf.training import model_dir as md

        config = md.read_config(model)
        names = attributes or config.get("attributes")
        weights = os.path.join(model, f"{which}.keras")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"model dir {model!r} has no {which}.keras")
        return _keras_predictor(weights, names, md.read_thresholds(model, names) if names else None)
    raise FileNotFoundError(
        f"model must be a SavedModel dir, a .keras file or a model dir with config.json. Received: {model!r}")


def _read_checked(path: str) -> tuple[Optional[bytes], Optional[object], str]:
    """(bytes, PIL RGB image, '') or (None, None, reason)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            return None, None, "empty file"
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ("JPEG", "PNG", "BMP", "GIF"):
                return None, None, f"unsupported format {im.format}"
            rgb = im.convert("RGB")
            rgb.load()
        return data, rgb, ""
    except (OSError, UnidentifiedImageError, ValueError) as e:
        return None, None, str(e).splitlines()[0] if str(e) else type(e).__name__


def _picture_name(path: str, used: set) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(path))[0]) or "image"
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name + ".png"


def pick_attributes(probabilities: np.ndarray, labels: np.ndarray, max_rows: int,
                    allowed: Optional[Sequence[int]] = None) -> list[int]:
    """Attributes to picture: predicted present first (by probability), then the most likely."""
    order = [int(m) for m in np.argsort(-probabilities) if allowed is None or int(m) in allowed]
    present = [m for m in order if labels[m]]
    rest = [m for m in order if not labels[m]]
    return (present + rest)[:max_rows]


def predict_files(predictor: ImagePredictor, paths: Sequence[str], output_dir: str, *,
                  batch_size: int = 16, pictures: bool = True, max_picture_rows: int = 4,
                  picture_attributes: Optional[Sequence[int]] = None,
                  max_pictures: Optional[int] = None, panel_height: int = 256,
                  progress: bool = True, report: Callable[[str], None] = print) -> PredictionResult:
    """Predicts every readable image; writes predictions.csv and localization PNGs.

    Args:
        predictor: from `load_image_predictor`.
        paths: image files.
        output_dir: where predictions.csv and pictures/ go.
        batch_size: images per predictor call.
        pictures: draw localization pictures (ALM models only: needs boxes).
        max_picture_rows: attributes per picture.
        picture_attributes: attribute indices a picture may show (default all).
        max_pictures: picture only the first this many images (None = all).
        panel_height: panel height of the pictures.
        progress: show a tqdm bar.
        report: where "skipped <path>: <reason>" lines go.

    Raises:
        ValueError: no image could be read.
    """
    from alm_tf import visualization

    os.makedirs(output_dir, exist_ok=True)
    good, skipped = [], []
    for path in paths:
        data, image, reason = _read_checked(path)
        if data is None:
            skipped.append((path, reason))
            report(f"skipped {path}: {reason}")
        else:
            good.append((path, data, image))
    if not good:
        raise ValueError(f"none of the {len(paths)} images could be read")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(good), unit="img", desc="predict")
    outputs: dict = {}
    for start in range(0, len(good), batch_size):
        chunk = good[start:start + batch_size]
        result = predictor([d for _, d, _ in chunk])
        for key, value in result.items():
            outputs.setdefault(key, []).append(np.asarray(value))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    outputs = {k: np.concatenate(v) for k, v in outputs.items()}
    names = predictor.attributes
    probs, labels = outputs["probabilities"], outputs["labels"]
    csv_path = os.path.join(output_dir, "predictions.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["image"]
        for name in names:
            header += [f"{name}_prob", name]
        writer.writerow(header)
        for i, (path, _, _) in enumerate(good):
            row = [path]
            for m in range(len(names)):
                row += [f"{probs[i, m]:.6f}", int(labels[i, m])]
            writer.writerow(row)
    written = []
    if pictures and "boxes" in outputs:
        used: set = set()
        limit = len(good) if max_pictures is None else min(max_pictures, len(good))
        for i in range(limit):
            path, _, image = good[i]
            rows = pick_attributes(probs[i], labels[i], max_picture_rows, picture_attributes)
            target = os.path.join(output_dir, "pictures", _picture_name(path, used))
            visualization.save_localization_picture(
                target, image, outputs["boxes"][i], rows, names, probabilities=probs[i],
                labels=labels[i], title=os.path.basename(path), panel_height=panel_height)
            written.append(target)
    return PredictionResult(csv_path, written, [p for p, _, _ in good], skipped, outputs)
