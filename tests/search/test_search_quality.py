"""Retrieval quality: the ranking finds people with known attributes far better than chance."""

import numpy as np
import pytest
from tests.search import search_folders as sf

from alm_tf import search
from alm_tf.search import quality

#: mAP of the ranking over the random ranking's, at least (the simulated
#: classifier below is right about 90% of the time per attribute).
MARGIN = 0.3


def test_average_precision():
    assert quality.average_precision([True, False, True], 2) == pytest.approx((1 + 2 / 3) / 2)
    assert quality.average_precision([False, True], 3) == pytest.approx(0.5 / 3)


def test_ranking_beats_random_by_a_margin(tmp_path):
    rng = np.random.default_rng(0)
    n, m = 120, len(sf.ATTRIBUTES)
    labels = (rng.random((n, m)) < 0.4).astype(int)
    # A simulated classifier: confident and mostly right, noisy around the threshold.
    probabilities = np.clip(0.2 + 0.6 * labels + rng.normal(0, 0.2, (n, m)), 0.01, 0.99)
    half = n // 2
    folders = [sf.write_folder(str(tmp_path / "a"), probabilities[:half], thumbnails=False),
               sf.write_folder(str(tmp_path / "b"), probabilities[half:], camera="cam2", source="b.mp4",
                               thumbnails=False)]
    search.index_folders(folders, str(tmp_path / "idx"))
    truth = {("cam1" if k < half else "cam2", (k % half) + 1): dict(zip(sf.ATTRIBUTES, labels[k]))
             for k in range(n)}
    table = quality.evaluate(search.Index(str(tmp_path / "idx")), truth)
    assert len(table) >= 10 and set(table["terms"]) == {1, 2, 3, 4}
    scored = table[table["relevant"] > 0]
    assert scored["ranked_ap"].mean() > scored["random_ap"].mean() + MARGIN, table.to_string()
    assert scored["ranked_ap"].mean() >= scored["strict_ap"].mean() - 0.05, table.to_string()
