import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_helpers  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny data set (train_helpers.write_dataset), once per test module."""
    path = str(tmp_path_factory.mktemp("data"))
    train_helpers.write_dataset(path)
    return path
