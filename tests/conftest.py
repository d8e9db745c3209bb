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

# The files that take longest, longest first (seconds summed over a file's
# tests in `make test --durations=0`, 2026-12-03): with `--dist loadfile`
# a file runs on one worker, and `--no-loadscope-reorder` (Makefile) keeps
# this order, so no long file starts last while the other worker idles.
# The other files follow in collection order. A stale list costs nothing
# but balance.
LONGEST_FILES_FIRST = (
    "tests/demo/test_demo_end_to_end.py",         # 61 s, the tiny demo
    "tests/test_keras_backbones.py",              # 49
    "tests/training/test_train_distributed.py",   # 43
    "tests/serving/test_portable.py",             # 38
    "tests/training/test_train_loop.py",          # 31
    "tests/test_model.py",                        # 29
    "tests/training/test_reliability_train_eval.py",
    "tests/test_torch_import.py",                 # 25
    "tests/test_backbones_end_to_end.py",         # 24
    "tests/training/test_backbone_weights.py",    # 16
    "tests/serving/test_serving_export.py",       # 15
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
