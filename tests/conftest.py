"""Shared pytest set-up: quiet TensorFlow, one thread per OpenMP runtime,
make the repo importable.

OMP_NUM_THREADS=1: PyTorch's OpenMP threads spin while they wait; with the
suite's two pytest-xdist workers on two cores (or any other load) a 2x64x16x8
convolution took 30 ms instead of 0.35 ms, and the reference model's
set-up in tests/test_parity.py 11 s instead of 1 s. The tests' tensors are
small: one thread each is also the fastest when the machine is idle.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core (make test): each TensorFlow runs one
    # op thread instead of a core's worth, so the workers do not fight over
    # the cores (about 10% faster in total, measured on two cores).
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
TRAINING = os.path.join(TESTS, "training")  # train_helpers: tiny data and models for every folder
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)
