"""The full-size demo: ALM beats the baseline and localizes (slow, ~10+ min)."""

import json

import pytest


@pytest.mark.slow
def test_full_demo_reaches_the_targets(tmp_path):
    from alm_tf import demo

    summary = demo.run_demo(demo.default_demo_config(str(tmp_path / "demo_output"), progress=False))
    with open(tmp_path / "demo_output" / "summary.json") as f:
        assert json.load(f)["alm"] == summary["alm"]
    hit = summary["localization_hit_rate"]
    assert summary["alm"]["mA"] > summary["baseline"]["mA"], summary
    assert hit["overall"] >= 0.9, hit
