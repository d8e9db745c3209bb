"""The one pixel contract shared by training, evaluation and every serving path:
what images are accepted (formats, size limits, EXIF), decode, resize,
normalise, and the crop a person box makes."""
