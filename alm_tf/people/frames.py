"""The frames of a people run and the boxes placed in them.

Frames come as image files (read as bytes, their header checked before any
decoding) or from a video (RGB arrays through PyAV, frames numbered from
1). A box file's detections are placed in their frames by frame number or
image name (`place`), then clipped to their frame (`clip`): a box reaching
outside is clipped and flagged, an empty box ends the run with one line.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from alm_tf.people import detections as det_lib
from alm_tf.people import footage as footage_run
from alm_tf.people import video as video_lib
from alm_tf.preprocessing import crops
from alm_tf.preprocessing import image_input

__all__ = ["PersonBox", "all_frames", "clip", "frame_size", "iter_frames", "place"]


@dataclasses.dataclass
class PersonBox:
    """A detection placed in its frame: `box` is clipped pixels x1, y1, x2, y2."""

    detection: det_lib.Detection
    frame: int
    image: Optional[str]
    box: tuple[int, int, int, int]
    normalized: tuple[float, float, float, float]
    clipped: bool


def frame_size(data, max_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS,
               exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION) -> tuple[int, int]:
    """(height, width) of a frame as the model decodes it (boxes refer to those pixels)."""
    if isinstance(data, (bytes, bytearray)):
        with image_input.open_image(bytes(data), max_pixels) as im:
            width, height = image_input.oriented_size(im, exif_orientation)
            return height, width
    return int(data.shape[0]), int(data.shape[1])


def _read_file(path: str, max_pixels: int) -> bytes:
    """A frame's bytes, its header checked (size within `max_pixels`) before any decoding."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise det_lib.DetectionsError(f"frame {path!r} is an empty file")
    try:
        frame_size(data, max_pixels)
    except image_input.ImageTooLarge as e:
        raise det_lib.DetectionsError(f"frame {path!r}: {e}") from None
    except (OSError, ValueError):
        raise det_lib.DetectionsError(f"frame {path!r} is not an image") from None
    return data


def iter_frames(config, numbers: list[int], paths: dict[int, str], times: Optional[dict] = None):
    """(number, image path or None, bytes or RGB array) of the wanted frames, in order.

    `config`: the run's PeopleConfig (its `video` or image frames, `max_image_pixels`).
    """
    if not numbers:
        return
    if config.video is None:
        for number in numbers:
            yield number, paths[number], _read_file(paths[number], config.max_image_pixels)
        return
    wanted = set(numbers)
    seen = 0
    for number, array in video_lib.iter_frames(config.video, wanted, last=max(numbers), times=times):
        seen = number
        yield number, None, array
    if seen < max(numbers):
        raise det_lib.DetectionsError(f"frame {max(numbers)} does not exist: the video {config.video!r} "
                                      f"has {seen if seen else 'no'} frames with boxes up to there")


def place(config, found: list[det_lib.Detection]):
    """Frame numbers, frame paths and the detections of each frame number."""
    by_frame: dict[int, list[det_lib.Detection]] = {}
    paths: dict[int, str] = {}
    if config.images is not None:
        index = det_lib.FrameIndex(config.images, config.images_root)
        for d in found:
            path = index.path_of(d)
            number = index.number_of(path)
            paths[number] = path
            by_frame.setdefault(number, []).append(d)
    else:
        for d in found:
            if d.frame is None:
                raise det_lib.DetectionsError(f"{d.line}: a video's boxes need frame numbers (column "
                                              f"'frame'), not image names")
            by_frame.setdefault(d.frame, []).append(d)
    return sorted(by_frame), paths, by_frame


def clip(d: det_lib.Detection, number: int, image: Optional[str], height: int, width: int) -> PersonBox:
    """`d` clipped to its height x width frame; DetectionsError when nothing is left."""
    x1, y1 = max(d.x1, 0.0), max(d.y1, 0.0)
    x2, y2 = min(d.x2, float(width)), min(d.y2, float(height))
    clipped = (x1, y1, x2, y2) != (d.x1, d.y1, d.x2, d.y2)
    normalized = crops.from_pixels(x1, y1, x2, y2, height, width)
    top, left, bottom, right = (int(v) for v in crops.pixel_boxes(np.asarray([normalized]), height, width)[0])
    if bottom <= top or right <= left:
        raise det_lib.DetectionsError(
            f"{d.line}: the box (x1={d.x1:g}, y1={d.y1:g}, x2={d.x2:g}, y2={d.y2:g}) is empty inside its "
            f"{width}x{height} frame {number}")
    return PersonBox(d, number, image, (left, top, right, bottom), tuple(normalized), clipped)


def numbered_images(config) -> tuple[Optional[list[str]], Optional[dict[str, int]]]:
    """The run's image frames in frame order and their numbers (None, None for a video)."""
    if config.images is None:
        return None, None
    index = det_lib.FrameIndex(config.images, config.images_root)
    numbers = {p: n for n, p in index.by_number.items()}
    return [index.by_number[n] for n in sorted(index.by_number)], numbers


def all_frames(config):
    """Every frame of the footage, (number, path or None, RGB array)."""
    images, numbers = numbered_images(config)
    return footage_run.iter_source_frames(config.video, images, numbers)
