"""Shared pytest set-up: quiet TensorFlow, make the repo importable."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
TRAINING = os.path.join(TESTS, "training")  # train_helpers: tiny data and models for every folder
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)
