"""People in frames and footage: box files, crops, video, detectors, tracking,
per-track answers, synthetic sequences."""
