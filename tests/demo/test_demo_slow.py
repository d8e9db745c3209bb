"""The full-size demo (slow: minutes): ALM beats the baseline and its boxes find the attributes.

The recipe is `alm_tf.demo.recipe.DemoConfig`'s defaults; the figures it
reaches are in BUILD_NOTES.md.
"""

import json

import pytest

from alm_tf.demo import run as demo


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "demo_output"
    summary = demo.run_demo(demo.default_demo_config(str(out), progress=False))
    with open(out / "summary.json") as f:
        assert json.load(f)["alm"] == summary["alm"]
    return summary


@pytest.mark.slow
def test_full_demo_alm_beats_the_baseline(full_demo):
    for key in ("mA", "f1"):
        assert full_demo["alm"][key] > full_demo["baseline"][key], full_demo


@pytest.mark.slow
def test_full_demo_localization_hit_rate(full_demo):
    hit = full_demo["localization_hit_rate"]
    assert hit["overall"] >= 0.9, hit
