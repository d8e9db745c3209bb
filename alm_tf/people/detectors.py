"""Person detectors behind one small interface: an RGB uint8 frame in, person
boxes in the frame's pixels (x1, y1, x2, y2; x2, y2 exclusive) and scores out.

Three kinds, chosen by `--detector`:

  hog              OpenCV's HOG people detector (its weights ship in the
                   OpenCV wheel: offline on a fresh machine), one of two
                   linear SVMs (`HOG_MODELS`): `inria`, OpenCV's default,
                   trained on INRIA's pedestrians in 64x128 windows, and
                   `daimler` (the default), trained on the Daimler
                   benchmark's smaller pedestrians in 48x96 windows. A window holds its person
                   with a margin; the box returned is the person's extent
                   inside it (`HogModel.margins`), as true boxes are drawn.
                   People smaller than the window need `upscale` > 1.
  DIR (SavedModel) the TensorFlow Object Detection API convention: input
                   uint8 [1, H, W, 3]; outputs `detection_boxes` (normalized
                   ymin, xmin, ymax, xmax), `detection_scores`,
                   `detection_classes`, `num_detections`; person = class 1.
  FILE.onnx        Ultralytics' YOLOv8 / YOLO11 export: input float
                   [1, 3, S, S] (RGB 0..1, letterboxed with gray 114 padding),
                   output (1, 4 + C, N): cx, cy, w, h in the letterboxed
                   input's pixels, then C class scores; person = class 0;
                   non-maximum suppression here.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Protocol

import numpy as np

HOG = "hog"
OD_API_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
OD_API_PERSON_CLASS = 1
YOLO_PERSON_CLASS = 0
LETTERBOX_GRAY = 114
EXTRA = "video"


@dataclasses.dataclass(frozen=True)
class HogModel:
    """One of OpenCV's HOG people SVMs.

    Args:
        window: (width, height) of its detection window in pixels.
        detector: the name of OpenCV's function returning its SVM weights.
        margins: (left, top, right, bottom) of the window around the person,
            as fractions of the window's width and height: the median over
            the synthetic street people the window fits (IoU >= 0.3, score
            >= 0); what `HogDetector` trims from each window.
        threshold: the default score threshold (`DetectorConfig.threshold`).
    """

    window: tuple[int, int]
    detector: str
    margins: tuple[float, float, float, float]
    threshold: float


#: The HOG people models of OpenCV 4, by `--hog_model` name.
HOG_MODELS = {
    "inria": HogModel((64, 128), "HOGDescriptor_getDefaultPeopleDetector", (0.2, 0.12, 0.2, 0.13), 0.0),
    "daimler": HogModel((48, 96), "HOGDescriptor_getDaimlerPeopleDetector", (0.14, 0.07, 0.14, 0.1), 0.25),
}
#: Daimler's window finds people from about 80 px tall at scale 1, INRIA's
#: from about 96 px: people in CCTV frames are often that small.
DEFAULT_HOG_MODEL = "daimler"

__all__ = ["DEFAULT_HOG_MODEL", "Detector", "DetectorConfig", "DetectorError", "HOG_MODELS", "HogModel",
           "load_detector", "letterbox", "nms"]


class DetectorError(ValueError):
    """A detector that cannot be loaded or has the wrong layout (one line)."""


class Detector(Protocol):
    """frame (H, W, 3) RGB uint8 -> (boxes (N, 4) float32 pixels x1, y1, x2, y2; scores (N,))."""

    name: str

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """What detects people.

    Args:
        spec: `hog`, a SavedModel folder, or an `.onnx` file.
        threshold: boxes with a lower score are dropped (None: the kind's default).
        min_person_height: boxes lower than this many pixels are dropped.
        person_class: the person class id (None: the kind's default).
        upscale: HOG only: frames are enlarged by this factor first.
        nms_iou: overlap above which the weaker of two boxes is dropped.
        hog_model: HOG only: which SVM (`HOG_MODELS`).
    """

    spec: str = HOG
    threshold: Optional[float] = None
    min_person_height: float = 0.0
    person_class: Optional[int] = None
    upscale: float = 1.0
    nms_iou: float = 0.45
    hog_model: str = DEFAULT_HOG_MODEL

    def __post_init__(self) -> None:
        if self.hog_model not in HOG_MODELS:
            raise ValueError(f"hog_model must be one of {', '.join(HOG_MODELS)}. Received: {self.hog_model!r}")
        if self.hog_model != DEFAULT_HOG_MODEL and self.spec != HOG:
            raise ValueError(f"hog_model applies to the hog detector only. Received: detector={self.spec!r}")
        if self.upscale <= 0 or not np.isfinite(self.upscale):
            raise ValueError(f"detector_upscale must be > 0. Received: {self.upscale}")
        if self.upscale != 1.0 and self.spec != HOG:
            raise ValueError(f"detector_upscale applies to the hog detector only. Received: "
                             f"detector={self.spec!r}")
        if self.min_person_height < 0:
            raise ValueError(f"min_person_height must be >= 0. Received: {self.min_person_height}")
        if self.person_class is not None and self.person_class < 0:
            raise ValueError(f"person_class must be >= 0. Received: {self.person_class}")
        if self.person_class is not None and self.spec == HOG:
            raise ValueError("person_class applies to SavedModel and ONNX detectors, not hog")
        if not 0 < self.nms_iou <= 1:
            raise ValueError(f"nms_iou must be in (0, 1]. Received: {self.nms_iou}")


def require_cv2():
    """The `cv2` module (OpenCV), or DetectorError naming the extra to install."""
    try:
        import cv2
    except ImportError as e:
        raise DetectorError(missing_module_message("the hog detector needs OpenCV", e)) from None
    return cv2


def missing_module_message(what: str, error: ImportError) -> str:
    """One line for a failed import of the `video` extra: the extra to install, or, where the
    module is there but a system library is not (OpenCV's libGL on a bare server), that library."""
    if error.name is None and "shared object" in str(error):
        return (f"{what}, which cannot load a system library ({error}): on Debian/Ubuntu "
                f"apt-get install libgl1 libglib2.0-0")
    return f"{what}, the optional '{EXTRA}' extra: pip install 'alm-tf[{EXTRA}]'"


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0)
        h = np.maximum(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def _finish(boxes, scores, config: DetectorConfig, default_threshold: float, height: int, width: int):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    threshold = default_threshold if config.threshold is None else config.threshold
    ok = ((scores >= threshold) & (boxes[:, 3] - boxes[:, 1] >= max(config.min_person_height, 1.0))
          & (boxes[:, 2] - boxes[:, 0] >= 1.0))
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, config.nms_iou)
    return boxes[keep], scores[keep]


class HogDetector:
    """OpenCV's HOG people detector (weights inside the OpenCV wheel).

    Its scores are the SVM's margins; the threshold is also OpenCV's
    `hitThreshold`, so a negative one finds windows OpenCV would not return.
    """

    def __init__(self, config: DetectorConfig):
        cv2 = require_cv2()
        self._cv2 = cv2
        self.config = config
        self.model = HOG_MODELS[config.hog_model]
        self.default_threshold = self.model.threshold
        # The model is named even when it is the default: run.json says which SVM found the people.
        self.name = f"{HOG}:{config.hog_model}" + ("" if config.upscale == 1.0 else f"@{config.upscale:g}")
        # OpenCV's default descriptor (16x16 blocks of 8x8 cells, 9 bins, gamma
        # correction) with the model's window.
        self._hog = cv2.HOGDescriptor(self.model.window, (16, 16), (8, 8), (8, 8), 9, 1, -1,
                                      cv2.HOGDESCRIPTOR_L2HYS, 0.2, True, cv2.HOGDESCRIPTOR_DEFAULT_NLEVELS)
        self._hog.setSVMDetector(getattr(cv2, self.model.detector)())

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = frame.shape[:2]
        scale = self.config.upscale
        image = frame if scale == 1.0 else self._cv2.resize(
            frame, (int(round(width * scale)), int(round(height * scale))), interpolation=self._cv2.INTER_LINEAR)
        hit = self.default_threshold if self.config.threshold is None else self.config.threshold
        rects, weights = self._hog.detectMultiScale(image, hitThreshold=hit, winStride=(8, 8), padding=(8, 8),
                                                    scale=1.05)
        rects = np.asarray(rects, np.float32).reshape(-1, 4) / scale
        left, top, right, bottom = self.model.margins
        x, y, w, h = rects[:, 0], rects[:, 1], rects[:, 2], rects[:, 3]
        boxes = np.stack([x + left * w, y + top * h, x + (1 - right) * w, y + (1 - bottom) * h], axis=1)
        return _finish(boxes, np.asarray(weights).reshape(-1), self.config, self.default_threshold,
                       height, width)


class SavedModelDetector:
    """A SavedModel in the TensorFlow Object Detection API convention."""

    default_threshold = 0.5

    def __init__(self, path: str, config: DetectorConfig):
        import tensorflow as tf

        self.config = config
        self.name = path
        self.person_class = OD_API_PERSON_CLASS if config.person_class is None else config.person_class
        try:
            loaded = tf.saved_model.load(path)
        except (OSError, ValueError, RuntimeError) as e:
            raise DetectorError(f"--detector {path!r} is not a SavedModel: {str(e).splitlines()[0]}") from None
        self._loaded = loaded  # keeps the variables alive
        fn = getattr(loaded, "signatures", {}).get("serving_default")
        found_in = found_out = "none"
        if fn is not None:
            spec = fn.structured_input_signature[1]
            found_in = ", ".join(f"{k} {s.dtype.name} {s.shape}" for k, s in spec.items())
            found_out = ", ".join(sorted(fn.structured_outputs))
            if (len(spec) == 1 and next(iter(spec.values())).dtype == tf.uint8
                    and set(OD_API_OUTPUTS) <= set(fn.structured_outputs)):
                self._fn, self._input = fn, next(iter(spec))
                return
        raise DetectorError(f"--detector {path!r} is not in the Object Detection API layout: expected a "
                            f"serving_default signature with one uint8 [1, H, W, 3] input and outputs "
                            f"{', '.join(OD_API_OUTPUTS)}; found inputs: {found_in}; outputs: {found_out}")

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        height, width = frame.shape[:2]
        out = self._fn(**{self._input: tf.constant(np.asarray(frame, np.uint8)[None])})
        n = int(np.asarray(out["num_detections"]).reshape(-1)[0])
        boxes = np.asarray(out["detection_boxes"]).reshape(-1, 4)[:n]
        scores = np.asarray(out["detection_scores"]).reshape(-1)[:n]
        classes = np.asarray(out["detection_classes"]).reshape(-1)[:n].astype(np.int64)
        person = classes == self.person_class
        boxes, scores = boxes[person], scores[person]
        pixels = boxes[:, [1, 0, 3, 2]] * np.asarray([width, height, width, height], np.float32)
        return _finish(pixels, scores, self.config, self.default_threshold, height, width)


def letterbox(frame: np.ndarray, size: tuple[int, int]):
    """Ultralytics' letterbox: resize keeping the aspect ratio, pad with gray 114 centred.

    Returns (image (size[0], size[1], 3) uint8, gain, (pad_x, pad_y)); a
    point (x, y) of the frame lands at (x * gain + pad_x, y * gain + pad_y).
    """
    from PIL import Image

    height, width = frame.shape[:2]
    out_h, out_w = size
    gain = min(out_h / height, out_w / width)
    new_w, new_h = int(round(width * gain)), int(round(height * gain))
    pad_x, pad_y = (out_w - new_w) / 2, (out_h - new_h) / 2
    left, top = int(round(pad_x - 0.1)), int(round(pad_y - 0.1))
    image = np.full((out_h, out_w, 3), LETTERBOX_GRAY, np.uint8)
    resized = frame if (new_w, new_h) == (width, height) else np.asarray(
        Image.fromarray(np.asarray(frame, np.uint8)).resize((new_w, new_h), Image.BILINEAR))
    image[top:top + new_h, left:left + new_w] = resized
    return image, gain, (left, top)


class OnnxYoloDetector:
    """An ONNX file in the Ultralytics YOLOv8 / YOLO11 export layout (ONNX Runtime)."""

    default_threshold = 0.25

    def __init__(self, path: str, config: DetectorConfig):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DetectorError("an ONNX detector needs onnxruntime, the optional 'export' extra: "
                                "pip install 'alm-tf[export]'") from None
        self.config = config
        self.name = path
        self.person_class = YOLO_PERSON_CLASS if config.person_class is None else config.person_class
        try:
            self._session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own classes for a bad file
            raise DetectorError(f"--detector {path!r} is not an ONNX model: {str(e).splitlines()[0]}") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        ok = (len(inputs) == 1 and len(inputs[0].shape) == 4 and inputs[0].shape[1] == 3
              and all(isinstance(d, int) for d in inputs[0].shape[2:]) and len(outputs) == 1
              and len(outputs[0].shape) == 3 and isinstance(outputs[0].shape[1], int) and outputs[0].shape[1] > 4)
        if not ok:
            raise DetectorError(
                f"--detector {path!r} is not in the YOLOv8/YOLO11 layout: expected one float input "
                f"[1, 3, S, S] and one output (1, 4 + classes, boxes); found inputs: "
                f"{', '.join(f'{i.name} {i.shape}' for i in inputs)}; outputs: "
                f"{', '.join(f'{o.name} {o.shape}' for o in outputs)}")
        self.num_classes = outputs[0].shape[1] - 4
        if self.person_class >= self.num_classes:
            raise DetectorError(f"--person_class={self.person_class} does not exist: {path!r} has "
                                f"{self.num_classes} classes (0..{self.num_classes - 1})")
        self._input = inputs[0].name
        self._size = tuple(int(d) for d in inputs[0].shape[2:])

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = frame.shape[:2]
        image, gain, (pad_x, pad_y) = letterbox(frame, self._size)
        blob = (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = np.asarray(self._session.run(None, {self._input: blob})[0])[0]  # (4 + C, N)
        cx, cy, w, h = out[0], out[1], out[2], out[3]
        scores = out[4 + self.person_class]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        boxes = (boxes - np.asarray([pad_x, pad_y, pad_x, pad_y], np.float32)) / gain
        return _finish(boxes, scores, self.config, self.default_threshold, height, width)


def load_detector(config: DetectorConfig) -> Detector:
    """The detector `config.spec` names; DetectorError (one line) when it cannot be used."""
    spec = config.spec
    if spec == HOG:
        return HogDetector(config)
    if spec.lower().endswith(".onnx"):
        if not os.path.isfile(spec):
            raise DetectorError(f"--detector not found: {spec!r}")
        return OnnxYoloDetector(spec, config)
    if os.path.isdir(spec):
        return SavedModelDetector(spec, config)
    raise DetectorError(f"--detector must be '{HOG}', a SavedModel folder or an .onnx file. "
                        f"Received: {spec!r}")
