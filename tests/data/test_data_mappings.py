"""The shipped mapping files (alm_tf/data/mappings/*.json)."""

from __future__ import annotations

import os
import tomllib

import numpy as np
import pytest
from tests.data.merge_helpers import converted

from alm_tf.data import mapping, schemas
from alm_tf.data.merge import MergeConfig, merge

SOURCES = {
    "pa100k": schemas.PA100K_ATTRIBUTES,
    "rap": schemas.RAP_ATTRIBUTES,
    "rapv2": schemas.RAPV2_ATTRIBUTES,
    "peta": schemas.PETA_ATTRIBUTES,
}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def to_pa100k():
    return mapping.load_mapping("to_pa100k")


def test_shipped_as_package_data():
    assert "to_pa100k" in mapping.builtin_mappings()
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    assert "mappings/*.json" in package_data["alm_tf.data"]
    assert mapping.MAPPINGS_DIR == os.path.join(ROOT, "alm_tf", "data", "mappings")


def test_targets_are_pa100k_and_every_section_decides_every_target(to_pa100k):
    assert to_pa100k.attributes == schemas.PA100K_ATTRIBUTES
    assert set(to_pa100k.sources) == set(SOURCES)
    for section, rules in to_pa100k.sources.items():
        assert list(rules) == list(schemas.PA100K_ATTRIBUTES), section  # null is a decision too


@pytest.mark.parametrize("section", sorted(SOURCES))
def test_each_section_binds_to_its_data_sets_attributes(to_pa100k, section):
    relabel = to_pa100k.bind(section, SOURCES[section], section)
    unknown = [-1] * len(SOURCES[section])
    assert relabel(unknown) == [-1] * 26  # unknown in, unknown out


def test_pa100k_is_the_identity(to_pa100k):
    relabel = to_pa100k.bind("pa100k", schemas.PA100K_ATTRIBUTES, "pa100k")
    labels = np.random.default_rng(0).integers(-1, 2, size=26).tolist()
    assert relabel(labels) == labels


def _one(section, attributes, **values):
    labels = [0] * len(attributes)
    for name, v in values.items():
        labels[attributes.index(name.replace("__", " ").replace("_", "-"))] = v
    return labels


def test_rules_on_hand_made_rows(to_pa100k):
    t = schemas.PA100K_ATTRIBUTES.index
    peta = to_pa100k.bind("peta", schemas.PETA_ATTRIBUTES, "peta")
    row = peta(_one("peta", schemas.PETA_ATTRIBUTES, Male=1, Age31_45=1))
    assert row[t("Female")] == 0 and row[t("Age18-60")] == 1 and row[t("AgeLess18")] == 0
    assert row[t("Glasses")] == -1 and row[t("Skirt&Dress")] == -1 and row[t("LongSleeve")] == 1
    row = peta(_one("peta", schemas.PETA_ATTRIBUTES, Male=0, Jeans=1))  # no age class: under 15
    assert row[t("Female")] == 1 and row[t("AgeLess18")] == 1 and row[t("Trousers")] == 1
    rap = to_pa100k.bind("rap", schemas.RAP_ATTRIBUTES, "rap")
    labels = _one("rap", schemas.RAP_ATTRIBUTES, Female=-1, ShortSleeve=-1, Skirt=0, ShortSkirt=-1, Dress=0)
    row = rap(labels)
    assert row[t("Female")] == -1 and row[t("ShortSleeve")] == -1 and row[t("LongSleeve")] == -1
    assert row[t("Skirt&Dress")] == -1  # one part unknown, none positive
    labels[schemas.RAP_ATTRIBUTES.index("Dress")] = 1
    assert rap(labels)[t("Skirt&Dress")] == 1
    rapv2 = to_pa100k.bind("rapv2", schemas.RAPV2_ATTRIBUTES, "rapv2")
    row = rapv2(_one("rapv2", schemas.RAPV2_ATTRIBUTES, Femal=1, Age46_60=1))
    assert row[t("Female")] == 1 and row[t("Age18-60")] == 1 and row[t("AgeOver60")] == -1


def test_merge_with_the_shipped_mapping(tmp_path):
    pa = converted(str(tmp_path / "pa"), list(schemas.PA100K_ATTRIBUTES), {"train": 4}, seed=3)
    peta = converted(str(tmp_path / "peta"), list(schemas.PETA_ATTRIBUTES), {"train": 3}, seed=4)
    m = merge(MergeConfig(inputs=(("pa100k", pa), ("peta", peta)), mapping="to_pa100k",
                          output_dir=str(tmp_path / "m"), show_progress=False)).manifest
    assert m["attributes"] == list(schemas.PA100K_ATTRIBUTES)
    assert m["mapping"]["name"] == "to_pa100k"
    unknown = m["splits"]["train"]["num_unknown"]
    known_peta = set(m["sources"][1]["known_attributes"])
    assert unknown == [0 if a in known_peta else 3 for a in schemas.PA100K_ATTRIBUTES]
