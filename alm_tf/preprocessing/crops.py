"""People in frames: person boxes, the pixels a box crops, crops at model size.

A person box is normalized [y1, x1, y2, x2] in its frame (the layout of
`tf.image.crop_and_resize`, with `box_indices` naming each box's frame).
The crop it makes is defined once, here, and used by the SavedModel's
`predict_boxes` signature, `LoadedModel.predict_boxes` and alm-predict:

  1. pixel rows [top, bottom) and columns [left, right) with
     top = floor(y1 * H + 0.5), left = floor(x1 * W + 0.5),
     bottom = floor(y2 * H + 0.5), right = floor(x2 * W + 0.5)
     (float32 arithmetic), clipped to the frame;
  2. that region at full resolution (what Pillow's
     `image.crop((left, top, right, bottom))` gives);
  3. `alm_tf.preprocessing.pixels.resize_images` to the model size, as for
     any other image (antialiased like PIL's BILINEAR).

So a box's answer equals cropping the frame with Pillow and calling
`predict_images` on the crop. A box that is empty after clipping (no
pixel row or column) is refused. A negative box index means "the frame
at the box's own position" (image_bytes[k] for box k): the request layout
that works with TF Serving's batching (savedmodel/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np
import tensorflow as tf

from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

__all__ = [
    "crop_array",
    "crops_from_arrays",
    "crops_from_frames",
    "from_pixels",
    "pixel_boxes",
    "predict_boxes",
    "resolve_box_indices",
    "to_size",
]


def pixel_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(K, 4) int64 [top, left, bottom, right] of normalized boxes in an
    (height, width) frame, by the rule of the module docstring (clipped)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    size = np.asarray([height, width, height, width], np.float32)
    values = np.floor(boxes * size + np.float32(0.5))
    return np.clip(values, 0, size).astype(np.int64)


def from_pixels(x1: float, y1: float, x2: float, y2: float, height: int, width: int) -> list[float]:
    """A pixel box (corners, exclusive right/bottom) as normalized [y1, x1, y2, x2]."""
    return [y1 / height, x1 / width, y2 / height, x2 / width]


def crop_array(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The full-resolution region of one normalized box (numpy, uint8 kept).

    Raises:
        ValueError: the box is empty inside the frame.
    """
    height, width = image.shape[:2]
    top, left, bottom, right = (int(v) for v in pixel_boxes(np.asarray([box]), height, width)[0])
    if bottom <= top or right <= left:
        raise ValueError(f"box {[round(float(v), 6) for v in box]} is empty inside its {width}x{height} frame")
    return image[top:bottom, left:right]


def _pixel_box_tf(box: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    size = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    values = tf.floor(box * size + 0.5)
    return tf.cast(tf.clip_by_value(values, 0.0, size), tf.int32)


def to_size(image: tf.Tensor, box: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """One box of an (H, W, 3) frame, cropped at full resolution and resized
    to (height, width, 3) float32 RGB 0..255. Graph-safe."""
    shape = tf.shape(image)
    top_left_bottom_right = _pixel_box_tf(box, shape[0], shape[1])
    top, left, bottom, right = tf.unstack(top_left_bottom_right)
    check = tf.debugging.Assert(
        tf.logical_and(bottom > top, right > left),
        ["predict_boxes: a box is empty inside its frame: box [y1, x1, y2, x2] =", box,
         "frame height, width =", shape[:2]], summarize=8)
    with tf.control_dependencies([check]):
        crop = image[top:bottom, left:right]
    return preprocessing.resize_images(crop, height, width)


def resolve_box_indices(box_indices: tf.Tensor, num_boxes: tf.Tensor, num_frames: tf.Tensor) -> tf.Tensor:
    """Box indices with a negative index replaced by the box's own position,
    checked to name one of the `num_frames` frames."""
    box_indices = tf.cast(box_indices, tf.int32)
    checks = [tf.debugging.assert_equal(
        tf.shape(box_indices)[0], num_boxes,
        message="predict_boxes: boxes and box_indices must have the same length")]
    with tf.control_dependencies(checks):
        own = tf.range(num_boxes, dtype=tf.int32)
        resolved = tf.where(box_indices < 0, own, box_indices)
    check = tf.debugging.assert_less(
        resolved, num_frames,
        message="predict_boxes: a box index names a frame that is not in image_bytes "
                "(a negative index needs as many frames as boxes)")
    with tf.control_dependencies([check]):
        return tf.identity(resolved)


def crops_from_frames(frames: tf.Tensor, boxes: tf.Tensor, box_indices: tf.Tensor, height: int,
                      width: int, decode=None) -> tf.Tensor:
    """Crops at model size (K, height, width, 3) float32 of K boxes in F frames.

    Args:
        frames: tf.string [F] encoded frames (decoded with `decode`, default
            `preprocessing.decode_image`), or a list of (H, W, 3) arrays
            (eager use only).
        boxes: float32 [K, 4] normalized [y1, x1, y2, x2].
        box_indices: int32 [K], the frame of each box (negative: its own
            position).
        decode: encoded bytes -> (H, W, 3) uint8; the exporter passes its
            checked decoder.

    Each distinct frame is decoded once (`tf.unique` on its bytes), also
    when a request repeats a frame for every box.
    """
    decode = decode or preprocessing.decode_image
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    tf.debugging.assert_rank(boxes, 2, message="predict_boxes: boxes must be [K, 4]")
    checks = [tf.debugging.assert_equal(tf.shape(boxes)[1], 4, message="predict_boxes: boxes must be [K, 4]"),
              tf.debugging.assert_all_finite(boxes, "predict_boxes: boxes must be finite")]
    with tf.control_dependencies(checks):
        boxes = tf.identity(boxes)
    num_boxes = tf.shape(boxes)[0]
    frames = tf.convert_to_tensor(frames, tf.string)
    indices = resolve_box_indices(box_indices, num_boxes, tf.shape(frames)[0])
    distinct, which = tf.unique(tf.gather(frames, indices))
    which = tf.cast(which, tf.int32)
    out = tf.TensorArray(tf.float32, size=num_boxes, element_shape=[height, width, 3])
    spec = tf.TensorSpec([height, width, 3], tf.float32)

    def body(u, out):
        image = decode(distinct[u])
        chosen = tf.cast(tf.reshape(tf.where(tf.equal(which, u)), [-1]), tf.int32)
        crops = tf.map_fn(lambda b: to_size(image, b, height, width), tf.gather(boxes, chosen),
                          fn_output_signature=spec)
        return u + 1, out.scatter(chosen, crops)

    _, out = tf.while_loop(lambda u, _: u < tf.shape(distinct)[0], body,
                           (tf.constant(0, tf.int32), out))
    return tf.reshape(out.stack(), [num_boxes, height, width, 3])


def crops_from_arrays(frames: Sequence[np.ndarray], boxes: np.ndarray, box_indices: np.ndarray,
                      height: int, width: int) -> tf.Tensor:
    """`crops_from_frames` for decoded frames (RGB arrays, any sizes), eagerly."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    box_indices = np.asarray(box_indices, np.int64).reshape(-1)
    if len(box_indices) != len(boxes):
        raise ValueError("boxes and box_indices must have the same length")
    crops = []
    for k, (box, index) in enumerate(zip(boxes, box_indices)):
        index = k if index < 0 else int(index)
        if index >= len(frames):
            raise ValueError(f"box {k} names frame {index}; there are {len(frames)} frames")
        crops.append(_to_size_eager(tf.convert_to_tensor(frames[index]), box, height, width))
    if not crops:
        return tf.zeros([0, height, width, 3], tf.float32)
    return tf.stack(crops)


def _to_size_eager(image: tf.Tensor, box: np.ndarray, height: int, width: int) -> tf.Tensor:
    array = np.asarray(image)
    return preprocessing.resize_images(crop_array(array, box), height, width)


def predict_boxes(model, frames: Sequence, boxes, box_indices) -> dict:
    """A loaded model's answers per person box (`LoadedModel.predict_boxes`).

    Args:
        model: an `alm_tf.artifacts.LoadedModel`.
        frames: F encoded frames (bytes), or F decoded RGB arrays (H, W, 3)
            of any sizes.
        boxes: (K, 4) normalized [y1, x1, y2, x2].
        box_indices: (K,) the frame of each box (negative: frame k for box k).

    Returns:
        `model.predict`'s dict, one row per box: a SavedModel given encoded
        frames runs its `predict_boxes` signature; otherwise the crops of
        this module's rule go through `model.predict`.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    box_indices = np.asarray(box_indices, np.int32).reshape(-1)
    if not len(boxes):  # no people: empty answers (the model refuses an empty batch)
        m = len(model.attributes)
        empty = {"probabilities": np.zeros([0, m], np.float32), "labels": np.zeros([0, m], np.int32)}
        if model.has_boxes:
            empty["boxes"] = np.zeros([0, model.num_levels, m, 4], np.float32)
        return empty
    encoded = all(isinstance(f, (bytes, bytearray)) for f in frames)
    if encoded and model.boxes_signature is not None:
        out = model.boxes_signature(image_bytes=tf.constant([bytes(f) for f in frames], tf.string),
                                    boxes=tf.constant(boxes), box_indices=tf.constant(box_indices))
        return {k: v.numpy() for k, v in out.items()}
    height, width = model.image_size
    if encoded:
        limit = getattr(model, "max_image_pixels", image_input.DEFAULT_MAX_IMAGE_PIXELS)
        exif = getattr(model, "exif_orientation", image_input.DEFAULT_EXIF_ORIENTATION)
        crops = crops_from_frames(tf.constant([bytes(f) for f in frames], tf.string), boxes, box_indices,
                                  height, width, decode=lambda e: preprocessing.decode_image(e, limit, exif))
    else:
        crops = crops_from_arrays(frames, boxes, box_indices, height, width)
    return model.predict(crops)
