"""Fixtures of the training tests: the tiny data set."""

import pytest

from tests.training import train_helpers


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny data set (train_helpers.write_dataset), once per test module."""
    path = str(tmp_path_factory.mktemp("data"))
    train_helpers.write_dataset(path)
    return path
