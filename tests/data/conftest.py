"""Fixtures of the data tests (tests/conftest.py belongs to the project)."""

from __future__ import annotations

import pytest
from absl import flags

import pipelines.convert  # noqa: F401  (defines the flags the CLI tests set)
import pipelines.synth  # noqa: F401
from tests.data.data_helpers import csv_dataset

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


@pytest.fixture
def csv17(tmp_path):
    """17 valid images with a csv of 3 attributes; returns (root, csv path)."""
    root = tmp_path / "src"
    return str(root), csv_dataset(str(root), n=17)
