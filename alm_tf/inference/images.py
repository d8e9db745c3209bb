"""Predictions on image files: any model form, CSV + localization pictures.

`load_image_predictor(model, ...)` accepts every model source of
`alm_tf.artifacts.load` (a model dir, a `.keras` file, a SavedModel from
alm-export: `E/N/` or `E/`, its highest version; attribute names from the
model, or an attributes file for older files that carry none, never
invented), or `server="host:port"` (gRPC) / `server="http://host:port"`
(REST): TF Serving through `alm_tf.serving.client`.

Every predictor maps a list of encoded images (bytes) to `probabilities`
(N, M), `labels` (N, M) and, for ALM models, `boxes` (N, L, M, 4); its
`boxes_fn` answers person boxes in frames (`alm_tf.people.run`),
its `groups` make readable answers (`alm_tf.groups`).
`predict_files` runs one over image files and writes `predictions.csv` (a
row per image: path, `picture` (its localization PNG under `pictures/`,
empty when none), then `<attr>_prob` and `<attr>` label per attribute,
then one readable-answer column per attribute group), `predictions.jsonl`
(a JSON object per image with `answers`) and a localization PNG per image;
unreadable images are reported and skipped (none readable: a ValueError
naming the first). Per-request `thresholds` (one float, one per attribute,
a name -> value map) relabel the probabilities.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
from PIL import UnidentifiedImageError
from tqdm import tqdm

from alm_tf import artifacts, names
from alm_tf.artifacts import formats as F
from alm_tf.inference import pictures as visualization
from alm_tf.inference import writers
from alm_tf import groups as groups_lib
from alm_tf.preprocessing import image_input
from alm_tf.serving import client

#: The file name extensions of a folder's images (`image_input.EXTENSIONS`).
IMAGE_EXTENSIONS = image_input.EXTENSIONS

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImagePredictor",
    "PredictionResult",
    "find_images",
    "load_image_predictor",
    "predict_files",
]


@dataclasses.dataclass
class ImagePredictor:
    """`fn(list of encoded images) -> {probabilities, labels[, boxes]}` (numpy)."""

    fn: Callable[[list[bytes]], dict]
    attributes: list[str]
    source: str
    kind: str  # "saved_model", "keras" or "server"
    #: (frames, (K, 4) normalized boxes, (K,) frame indices) -> outputs per box.
    boxes_fn: Optional[Callable] = None
    groups: Optional[groups_lib.AttributeGroups] = None
    #: The model's thresholds when known (track aggregation needs them).
    model_thresholds: Optional[tuple[float, ...]] = None
    #: The largest image (width x height) the model's decoder takes; None: unknown (a server).
    max_image_pixels: Optional[int] = None
    #: How the model treats a JPEG's EXIF Orientation (its pictures show what it saw).
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION

    def image_limit(self, wanted: int) -> int:
        """The limit to check images against: `wanted`, lowered to the model's own."""
        return wanted if self.max_image_pixels is None else min(wanted, self.max_image_pixels)

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = groups_lib.infer(self.attributes)

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


def _loaded_predictor(loaded: artifacts.LoadedModel) -> ImagePredictor:
    keys = F.ANSWER_KEYS

    def fn(encoded: list[bytes]) -> dict:
        return {k: v for k, v in loaded.predict_encoded(encoded).items() if k in keys}

    def boxes_fn(frames, boxes, box_indices) -> dict:
        return {k: v for k, v in loaded.predict_boxes(frames, boxes, box_indices).items() if k in keys}

    predictor = ImagePredictor(fn, list(loaded.attributes), loaded.origin, loaded.kind, boxes_fn,
                               loaded.groups, tuple(loaded.thresholds), loaded.max_image_pixels,
                               loaded.exif_orientation)
    predictor.loaded = loaded
    return predictor


def _server_predictor(server: str, attributes: Optional[list[str]], model_name: str,
                      groups: Optional[groups_lib.AttributeGroups] = None) -> ImagePredictor:
    """TF Serving: `host:port` (gRPC) or `http://host:port` (REST, needs the names)."""
    rest = server.startswith(("http://", "https://"))
    try:
        client.check_server(server, model_name)
    except client.ServingError as e:
        raise ValueError(f"TF Serving at {server}: {e}") from None
    thresholds, meta = None, {}
    if attributes is None:
        if rest:
            raise ValueError("a REST --server needs the attribute names (--attributes_file)")
        try:
            meta = client.fetch_metadata_grpc(target=server, model_name=model_name)
        except client.ServingError as e:
            raise ValueError(f"TF Serving at {server}: {e}") from None
        attributes = list(meta["attributes"])
        thresholds = tuple(float(t) for t in meta["thresholds"]) if "thresholds" in meta else None
        if groups is None and "groups" in meta:
            groups = groups_lib.from_description(json.loads(meta["groups"]), attributes,
                                                 f"TF Serving at {server}: groups")

    def fn(encoded: list[bytes]) -> dict:
        try:
            if rest:
                preds = client.predict_rest(encoded, attributes, url=server, model_name=model_name)
            else:
                preds = client.predict_grpc(encoded, attributes, target=server, model_name=model_name)
        except client.ServingError as e:
            raise ValueError(f"TF Serving at {server}: {e}") from None
        out = {
            F.PROBABILITIES: np.array([[p.probabilities[a] for a in attributes] for p in preds], np.float32),
            F.LABELS: np.array([[p.labels[a] for a in attributes] for p in preds], np.int32),
        }
        if preds and preds[0].boxes is not None:
            out[F.BOXES] = np.stack([np.asarray(p.boxes, np.float32) for p in preds])
        return out

    def boxes_fn(frames, boxes, box_indices) -> dict:
        encoded = [f if isinstance(f, bytes) else tf_png(f) for f in frames]
        try:
            if rest:
                return client.predict_boxes_rest(encoded, boxes, box_indices, attributes, url=server,
                                                 model_name=model_name, raw=True)
            return client.predict_boxes_grpc(encoded, boxes, box_indices, attributes, target=server,
                                             model_name=model_name, raw=True)
        except client.ServingError as e:
            raise ValueError(f"TF Serving at {server}: {e}") from None

    # An export's decoded-size limit and EXIF choice (older exports: unknown / ignore).
    limit = meta.get(image_input.MAX_PIXELS_FLAG)
    exif = meta.get(image_input.EXIF_FLAG, image_input.DEFAULT_EXIF_ORIENTATION)
    return ImagePredictor(fn, list(attributes), server, "server", boxes_fn, groups, thresholds,
                          None if limit is None else int(limit), exif)


def tf_png(array) -> bytes:
    """A decoded frame as PNG bytes (lossless: the server decodes the same pixels)."""
    import tensorflow as tf

    return tf.io.encode_png(np.asarray(array, np.uint8)).numpy()


def load_image_predictor(model: Optional[str] = None, *, attributes_file: Optional[str] = None,
                         server: Optional[str] = None, model_name: str = names.MODEL_NAME,
                         which: str = "final", groups_file: Optional[str] = None,
                         max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> ImagePredictor:
    """A predictor for any model source (`alm_tf.artifacts.load`) or a TF Serving address.

    `groups_file`: attribute groups (`alm_tf.groups`) overriding the model's.
    `max_image_pixels`: the decoded-size limit of a model decoded here; a
    SavedModel keeps the one it was exported with (the lower one is checked).

    Raises:
        artifacts.ModelSourceError (a ValueError): the model cannot be
            loaded, or the attribute names do not fit it.
    """
    attributes = artifacts.read_attributes_file(attributes_file) if attributes_file else None
    if server:
        predictor = _server_predictor(server, attributes, model_name)
        if groups_file:
            predictor.groups = groups_lib.read_groups_file(groups_file, predictor.attributes)
        return predictor
    loaded = artifacts.load(model, which=which, attributes=attributes, groups_file=groups_file)
    if loaded.kind != "saved_model":
        loaded.max_image_pixels = image_input.check_max_pixels(max_image_pixels)
    return _loaded_predictor(loaded)


def _read_checked(path: str, max_pixels: int, exif_orientation: str,
                  ) -> tuple[Optional[bytes], Optional[object], str]:
    """(bytes, PIL RGB image, '') or (None, None, reason).

    The header's size is checked before decoding (`image_input.open_image`).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            return None, None, "empty file"
        with image_input.open_image(data, max_pixels) as im:
            if im.format not in image_input.FORMATS:
                return None, None, f"unsupported format {im.format}"
            rgb = image_input.oriented(im, exif_orientation).convert("RGB")
            rgb.load()
        return data, rgb, ""
    except UnidentifiedImageError:  # its text names a BytesIO object, not the file
        return None, None, f"not an image file ({image_input.FORMATS_TEXT})"
    except (OSError, ValueError) as e:
        return None, None, str(e).splitlines()[0] if str(e) else type(e).__name__


def _picture_name(path: str, used: set) -> str:
    """A unique, safe PNG name from the image's name: letters of any script kept.

    Path separators, control characters and characters Windows refuses
    become `_`; a name is never hidden (no leading dot).
    """
    stem = unicodedata.normalize("NFC", os.path.splitext(os.path.basename(path))[0])
    stem = re.sub(r'[\x00-\x1f\x7f<>:"/\\|?*\s]+', "_", stem).lstrip(".") or "image"
    stem = stem[:100]
    name, k = stem, 1
    while name.casefold() in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name.casefold())
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
                  progress: bool = True, report: Callable[[str], None] = print,
                  thresholds: groups_lib.ThresholdSpec = None,
                  max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> PredictionResult:
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
        thresholds: per-request thresholds (`alm_tf.groups.relabel`).
        max_image_pixels: images whose header claims more pixels are
            skipped before decoding (`alm_tf.preprocessing.image_input`).

    Raises:
        ValueError: no image could be read.
    """
    groups_lib.request_thresholds(thresholds, predictor.attributes)  # bad thresholds fail first
    good, skipped = _read_images(predictor, paths, max_image_pixels, report)
    os.makedirs(output_dir, exist_ok=True)
    outputs = _predict_batches(predictor, [d for _, d, _ in good], batch_size, progress)
    names = predictor.attributes
    probs = outputs[F.PROBABILITIES]
    labels = outputs[F.LABELS] = groups_lib.relabel(probs, outputs[F.LABELS], thresholds, names)
    groups = predictor.groups or groups_lib.infer(names)
    answers = groups.answers(probs, labels)
    # Picture names first: two images named a.png in different folders get
    # a.png and a_2.png, and the CSV's `picture` column says which is whose.
    picture_names: dict[int, str] = {}
    if pictures and F.BOXES in outputs:
        used: set = set()
        limit = len(good) if max_pictures is None else min(max_pictures, len(good))
        picture_names = {i: _picture_name(good[i][0], used) for i in range(limit)}
    images = [path for path, _, _ in good]
    csv_path = _write_csv(output_dir, images, picture_names, probs, labels, names, groups, answers)
    writers.write_jsonl(os.path.join(output_dir, writers.PREDICTIONS_JSONL),
                        (writers.jsonl_record(answers[i], probs[i], names, image=path)
                         for i, path in enumerate(images)))
    written = []
    for i, picture in picture_names.items():
        path, _, image = good[i]
        rows = pick_attributes(probs[i], labels[i], max_picture_rows, picture_attributes)
        target = os.path.join(output_dir, writers.PICTURES_DIR, picture)
        visualization.save_localization_picture(
            target, image, outputs[F.BOXES][i], rows, names, probabilities=probs[i],
            labels=labels[i], title=os.path.basename(path), panel_height=panel_height)
        written.append(target)
    return PredictionResult(csv_path, written, images, skipped, outputs)


def _read_images(predictor: ImagePredictor, paths: Sequence[str], max_image_pixels: int,
                 report: Callable[[str], None]) -> tuple[list, list[tuple[str, str]]]:
    """(path, bytes, PIL image) of every readable image and (path, reason) of the others.

    Raises:
        ValueError: none could be read (naming the first).
    """
    good, skipped = [], []
    for path in paths:
        data, image, reason = _read_checked(path, predictor.image_limit(max_image_pixels),
                                            predictor.exif_orientation)
        if data is None:
            skipped.append((path, reason))
        else:
            good.append((path, data, image))
    if not good:
        first = f"{skipped[0][0]}: {skipped[0][1]}"
        raise ValueError(f"cannot read {first}" if len(paths) == 1 else
                         f"none of the {len(paths)} images could be read (first: {first})")
    for path, reason in skipped:
        report(f"skipped {path}: {reason}")
    return good, skipped


def _predict_batches(predictor: ImagePredictor, encoded: list[bytes], batch_size: int,
                     progress: bool) -> dict:
    """The predictor's outputs of `encoded`, called `batch_size` images at a time, concatenated."""
    bar = tqdm(total=len(encoded), unit="img", desc="predict") if progress else None
    outputs: dict = {}
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        for key, value in predictor(chunk).items():
            outputs.setdefault(key, []).append(np.asarray(value))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return {k: np.concatenate(v) for k, v in outputs.items()}


def _write_csv(output_dir: str, images: Sequence[str], picture_names: dict[int, str], probs, labels,
               names: Sequence[str], groups: groups_lib.AttributeGroups, answers) -> str:
    """predictions.csv: image, picture, `<attr>_prob` and `<attr>` per attribute, group answers."""
    csv_path = os.path.join(output_dir, writers.PREDICTIONS_CSV)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "picture"] + writers.attribute_columns(names) + list(groups.csv_columns))
        for i, path in enumerate(images):
            picture = f"{writers.PICTURES_DIR}/{picture_names[i]}" if i in picture_names else ""
            writer.writerow([path, picture] + writers.attribute_cells(probs[i], labels[i])
                            + groups.csv_values(answers[i]))
    return csv_path
