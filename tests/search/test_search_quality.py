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


def test_found_tracks_matched_to_people():
    from alm_tf.people.detections import Detection

    def box(frame, track, x):
        return Detection(frame, None, track, x, 0.0, x + 10.0, 20.0, None, "test")

    truth = [box(f, 1, 0) for f in range(1, 5)] + [box(f, 2, 50) for f in range(1, 5)]
    found = ([box(f, 7, 1) for f in range(1, 3)] + [box(f, 8, 1) for f in range(3, 5)]  # person 1, split
             + [box(f, 9, 51 if f < 2 else 200) for f in range(1, 5)])  # on person 2 for 1 frame of 4
    assert quality.match_tracks(found, truth) == {7: 1, 8: 1}


def test_false_tracks_and_missed_people_lower_the_scores(tmp_path):
    p = np.array([sf.probs(hat=0.9), sf.probs(hat=0.8), sf.probs(hat=0.1)])
    search.index_folders([sf.write_folder(str(tmp_path / "a"), p, thumbnails=False)], str(tmp_path / "idx"))
    hat = dict.fromkeys(sf.ATTRIBUTES, 0) | {"hat": 1}
    truth = {("cam1", 1): None, ("cam1", 2): hat, ("cam1", 3): dict.fromkeys(sf.ATTRIBUTES, 0)}
    row = quality.evaluate(search.Index(str(tmp_path / "idx")), truth, ["hat"], unfound=[hat]).iloc[0]
    assert row["relevant"] == 2
    assert row["ranked_ap"] == pytest.approx(0.5 / 2)  # found at rank 2; the missed one never
    assert row["random_ap"] == pytest.approx(1 / 3 * 1 / 2)
