"""Video frames through PyAV (the optional `video` extra: `pip install 'alm-tf[video]'`).

PyAV wraps FFmpeg's libraries in its wheels (no system FFmpeg needed) and
decodes every format FFmpeg does. Frames are numbered from 1 in decoding
order, as MOTChallenge numbers them; each comes as an RGB uint8 array.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator
from typing import Optional

import numpy as np

EXTRA = "video"
INSTALL_HINT = f"pip install 'alm-tf[{EXTRA}]'"

__all__ = ["VideoError", "count_frames", "frame_rate", "iter_frames", "require_av"]


class VideoError(ValueError):
    """A video that cannot be read, or PyAV missing (one line)."""


def require_av():
    """The `av` module, or VideoError naming the extra to install."""
    try:
        import av
    except ImportError:
        raise VideoError(f"reading a video needs PyAV, the optional '{EXTRA}' extra: "
                         f"{INSTALL_HINT}") from None
    return av


def iter_frames(path: str, wanted: Optional[Container[int]] = None,
                last: Optional[int] = None, times: Optional[dict] = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number from 1, RGB uint8 (H, W, 3)) of a video file, in order.

    Args:
        path: the video file.
        wanted: only these frame numbers are converted to arrays (the others
            are decoded and skipped); None: all.
        last: stop after this frame number.
        times: filled with frame number -> seconds from the container's
            timestamps (frames without one are left out).

    Raises:
        VideoError: no such file, not a video, PyAV missing.
    """
    for number, frame in _decoded(path, last):
        if times is not None and frame.time is not None:
            times[number] = float(frame.time)
        if wanted is None or number in wanted:
            yield number, frame.to_ndarray(format="rgb24")


def _decoded(path: str, last: Optional[int] = None):
    """(number, av.VideoFrame) of every frame, in decoding order."""
    av = require_av()
    if not os.path.isfile(path):
        raise VideoError(f"video not found: {path!r}")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"cannot open video {path!r}: {_first_line(e)}") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path!r} has no video stream")
        number = 0
        try:
            for frame in container.decode(container.streams.video[0]):
                number += 1
                if last is not None and number > last:
                    return
                yield number, frame
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot decode {path!r} after frame {number}: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def frame_rate(path: str) -> Optional[float]:
    """The video stream's average frame rate, or None when the container does not tell."""
    av = require_av()
    if not os.path.isfile(path):
        raise VideoError(f"video not found: {path!r}")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"{path!r} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"cannot open video {path!r}: {_first_line(e)}") from None
    return float(rate) if rate else None


def count_frames(path: str) -> int:
    """The number of frames, by decoding (containers' counts can be missing or wrong)."""
    return sum(1 for _ in _decoded(path))


def write_video(path: str, frames, fps: int = 10) -> str:
    """Writes RGB uint8 frames as a lossless-enough MPEG-4 part 2 video (tests, demos)."""
    av = require_av()
    frames = [np.asarray(f, np.uint8) for f in frames]
    if not frames:
        raise VideoError("no frames to write")
    height, width = frames[0].shape[:2]
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array[:stream.height, :stream.width], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
