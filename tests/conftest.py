"""Shared pytest set-up: quiet TensorFlow, one thread per OpenMP runtime,
the longest test files handed out first.

tests/ is a package: pytest puts the repository root on sys.path (its
`prepend` import mode, the root being the folder above the top `__init__.py`),
so test files import the library as `alm_tf` and shared helpers as
`from tests import mini_model` or `from tests.training import train_helpers`.

OMP_NUM_THREADS=1: PyTorch's OpenMP threads spin while they wait; with two
pytest-xdist workers on two cores (or any other load) a small convolution
waits on spinning threads for many times its own run time. The tests'
tensors are small: one thread each is also the fastest on an idle machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core (make test): each TensorFlow runs one
    # op thread instead of a core's worth, so the workers do not fight over
    # the cores.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# The files that take longest, longest first: the seconds summed over a
# file's tests (setup included) in the output of
#   python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=0
# With `--dist loadfile` a file runs on one worker, and `--no-loadscope-reorder`
# (Makefile) keeps this order, so no long file starts last while the other
# worker idles. The other files follow in collection order. A stale list costs
# nothing but balance.
LONGEST_FILES_FIRST = (
    "tests/demo/test_demo_end_to_end.py",  # the tiny demo
    "tests/test_keras_backbones.py",
    "tests/serving/test_portable_errors.py",
    "tests/serving/test_serving_cli.py",
    "tests/training/test_train_distributed.py",
    "tests/serving/test_portable.py",
    "tests/test_model.py",
    "tests/training/test_train_loop.py",
    "tests/serving/test_serving_export.py",
    "tests/training/test_feature_cache.py",
    "tests/test_torch_import.py",
    "tests/test_backbones_end_to_end.py",
    "tests/training/test_backbone_weights.py",
    "tests/demo/test_predict_cli.py",
    "tests/serving/test_serving_exif.py",
    "tests/data/test_data_convert.py",
    "tests/training/test_reliability_train_eval.py",
    "tests/training/test_model_dir_trust.py",
    "tests/serving/test_footage_cli.py",
    "tests/training/test_evaluation.py",
    "tests/test_parity.py",
    "tests/demo/test_predict_image_input.py",
    "tests/data/test_data_pipeline.py",
    "tests/test_torch_reference.py",
    "tests/search/test_search_page_browser.py",
    "tests/training/test_merged_training.py",
    "tests/serving/test_serving_image_limits.py",
)

def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
