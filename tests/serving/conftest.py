"""Fixtures of the serving tests: one small export per session."""

import pytest

from alm_tf import artifacts
from tests.serving import serving_helpers


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A small ALM model in a fake model dir, exported once: serving_helpers.Exported."""
    return serving_helpers.make_exported(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="session")
def saved(exported):
    """The export through the one loader: alm_tf.artifacts.LoadedModel."""
    return artifacts.load(exported.saved_model)


@pytest.fixture(scope="session")
def loaded(saved):
    """The tf.saved_model.load object of the export (loaded once, with `saved`)."""
    return saved.handle
