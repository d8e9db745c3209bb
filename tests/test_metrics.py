"""Tests for alm_tf.evaluation.metrics on a small example computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from alm_tf.evaluation import metrics

# 4 images x 3 attributes.
LABELS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
PROBS = np.array([
    [0.9, 0.2, 0.4],   # predicted [1, 0, 0]
    [0.6, 0.7, 0.1],   # predicted [1, 1, 0]
    [0.8, 0.3, 0.5],   # predicted [1, 0, 0]: 0.5 is not > 0.5
    [0.1, 0.1, 0.2],   # predicted [0, 0, 0]
])
# By hand:
# attr0: TP 2 FN 0 TN 1 FP 1 -> (2/2 + 1/2) / 2 = 0.75
# attr1: TP 1 FN 1 TN 2 FP 0 -> (1/2 + 2/2) / 2 = 0.75
# attr2: TP 0 FN 1 TN 3 FP 0 -> (0/1 + 3/3) / 2 = 0.5    mA = 2/3
# img0: TP 1 FP 0 FN 1 -> acc 1/2, prec 1,   rec 1/2
# img1: TP 1 FP 1 FN 0 -> acc 1/2, prec 1/2, rec 1
# img2: TP 1 FP 0 FN 1 -> acc 1/2, prec 1,   rec 1/2
# img3: nothing at all -> 0, 0, 0 (zero denominators contribute 0)
# accuracy 1.5/4, precision 2.5/4, recall 2/4, F1 = 2*.625*.5/1.125 = 5/9
EXPECTED = {"mA": 2 / 3, "accuracy": 0.375, "precision": 0.625,
            "recall": 0.5, "f1": 5 / 9}


def test_hand_computed_example():
    result = metrics.compute_metrics(LABELS, PROBS)
    for key, value in EXPECTED.items():
        assert result[key] == pytest.approx(value), key
    per = result["per_attribute"]
    np.testing.assert_array_equal(per["tp"], [2, 1, 0])
    np.testing.assert_array_equal(per["fn"], [0, 1, 1])
    np.testing.assert_array_equal(per["tn"], [1, 2, 3])
    np.testing.assert_array_equal(per["fp"], [1, 0, 0])
    np.testing.assert_allclose(per["positive_recall"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(per["negative_recall"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(per["mA"], [0.75, 0.75, 0.5])
    np.testing.assert_allclose(per["positive_ratio"], [0.5, 0.5, 0.25])
    assert result["num_images"] == 4


def test_f1_is_papers_not_mean_of_per_image_f1():
    result = metrics.compute_metrics(LABELS, PROBS)
    # mean per-image F1 would be (2/3 + 2/3 + 2/3 + 0) / 4 = 0.5.
    assert result["f1"] == pytest.approx(5 / 9)


def test_from_logits_equals_probabilities():
    logits = np.log(PROBS / (1 - PROBS))
    a = metrics.compute_metrics(LABELS, PROBS)
    b = metrics.compute_metrics(LABELS, logits,
                                from_logits=True)
    for key in EXPECTED:
        assert a[key] == pytest.approx(b[key])


def test_per_attribute_threshold():
    # attr1 at 0.25: predicted [0, 1, 1, 0] -> TP 2 TN 2 -> mA 1.0.
    result = metrics.compute_metrics(LABELS, PROBS, threshold=[0.5, 0.25, 0.5])
    np.testing.assert_allclose(result["per_attribute"]["mA"], [0.75, 1.0, 0.5])
    assert result["mA"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="threshold"):
        metrics.compute_metrics(LABELS, PROBS, threshold=[0.5, 0.5])


def test_guard_attribute_without_positives_or_negatives():
    labels = np.array([[0, 1], [0, 1], [0, 1], [0, 1]])
    probs = np.array([[0.9, 0.9], [0.1, 0.9], [0.1, 0.9], [0.1, 0.1]])
    per = metrics.compute_metrics(labels, probs)["per_attribute"]
    # attr0 has no positives: its mA is the negative recall 3/4 alone.
    assert np.isnan(per["positive_recall"][0])
    assert per["mA"][0] == pytest.approx(0.75)
    # attr1 has no negatives: its mA is the positive recall 3/4 alone.
    assert np.isnan(per["negative_recall"][1])
    assert per["mA"][1] == pytest.approx(0.75)


def test_empty_split_raises():
    with pytest.raises(ValueError, match="empty"):
        metrics.compute_metrics(np.zeros((0, 3)), np.zeros((0, 3)))


@pytest.mark.parametrize("from_logits", [True, False])
def test_streaming_equals_numpy(from_logits):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(37, 5))
    labels[:, 4] = 0  # guard branch: no positives
    logits = rng.normal(size=(37, 5)).astype(np.float32)
    scores = logits if from_logits else 1 / (1 + np.exp(-logits))
    metric = metrics.ALMMetrics(5, from_logits=from_logits)
    for start in range(0, 37, 8):
        metric.update_state(tf.constant(labels[start:start + 8]),
                            tf.constant(scores[start:start + 8]))
    streamed = {k: float(v) for k, v in metric.result().items()}
    expected = metrics.compute_metrics(labels, logits, from_logits=True)
    for key in EXPECTED:
        assert streamed[key] == pytest.approx(expected[key], abs=1e-6), key
    metric.reset_state()
    assert float(metric.result()["mA"]) == 0.0


def test_streaming_hand_example_and_config():
    metric = metrics.ALMMetrics(3, from_logits=False)
    metric.update_state(LABELS, PROBS.astype(np.float32))
    result = metric.result()
    for key, value in EXPECTED.items():
        assert float(result[key]) == pytest.approx(value, abs=1e-6), key
    clone = metrics.ALMMetrics.from_config(metric.get_config())
    assert clone.num_attributes == 3 and clone.from_logits is False


# ---- unknown labels (-1) ---------------------------------------------------

# PROBS as above (predicted [1,0,0], [1,1,0], [1,0,0], [0,0,0]); -1 = unknown.
LABELS_U = np.array([[1, -1, 1], [0, 1, -1], [-1, 1, 0], [-1, -1, -1]])
# By hand, known labels only:
# attr0: rows 0 (1), 1 (0): TP 1 FP 1 -> (1/1 + 0/1) / 2 = 0.5
# attr1: rows 1 (1), 2 (1): TP 1 FN 1, no negative -> 1/2 alone = 0.5
# attr2: rows 0 (1), 2 (0): FN 1 TN 1 -> (0/1 + 1/1) / 2 = 0.5   mA = 0.5
# img0 (attrs 0, 2): TP 1 FP 0 FN 1 -> acc 1/2, prec 1,   rec 1/2
# img1 (attrs 0, 1): TP 1 FP 1 FN 0 -> acc 1/2, prec 1/2, rec 1
# img2 (attrs 1, 2): TP 0 FP 0 FN 1 -> acc 0,   prec 0,   rec 0
# img3: no known label, not counted: means over 3 images.
# accuracy 1/3, precision 1.5/3, recall 1.5/3, F1 = 2*.5*.5/1 = 0.5
EXPECTED_U = {"mA": 0.5, "accuracy": 1 / 3, "precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_unknown_labels_hand_computed():
    result = metrics.compute_metrics(LABELS_U, PROBS)
    for key, value in EXPECTED_U.items():
        assert result[key] == pytest.approx(value), key
    per = result["per_attribute"]
    np.testing.assert_array_equal(per["tp"], [1, 1, 0])
    np.testing.assert_array_equal(per["fn"], [0, 1, 1])
    np.testing.assert_array_equal(per["tn"], [0, 0, 1])
    np.testing.assert_array_equal(per["fp"], [1, 0, 0])
    np.testing.assert_array_equal(per["num_known"], [2, 2, 2])
    np.testing.assert_allclose(per["positive_ratio"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(per["mA"], [0.5, 0.5, 0.5])
    assert result["num_images"] == 4 and result["num_labelled_images"] == 3


def test_fully_known_labels_count_every_image():
    result = metrics.compute_metrics(LABELS, PROBS)
    assert result["num_labelled_images"] == 4
    np.testing.assert_array_equal(result["per_attribute"]["num_known"], [4, 4, 4])


def test_attribute_with_no_known_label_is_left_out_of_mA():
    labels = LABELS.copy()
    labels[:, 2] = -1
    result = metrics.compute_metrics(labels, PROBS)
    per = result["per_attribute"]
    assert np.isnan(per["mA"][2]) and np.isnan(per["positive_ratio"][2]) and per["num_known"][2] == 0
    assert result["mA"] == pytest.approx(0.75)  # attrs 0 and 1 as in the hand example
    # img0: TP 1 (attr0) -> acc 1, prec 1, rec 1; img1: TP 1 FP 1 -> 1/2, 1/2, 1;
    # img2: TP 1 FN 1 -> 1/2, 1, 1/2; img3: labels 0, 0 known, nothing predicted -> 0, 0, 0.
    assert (result["accuracy"], result["precision"], result["recall"]) == pytest.approx((0.5, 0.625, 0.625))


def test_unknown_labels_streaming_and_batch_counts_equal_numpy():
    metric = metrics.ALMMetrics(3, from_logits=False)
    for start in (0, 2):
        metric.update_state(LABELS_U[start:start + 2], PROBS[start:start + 2].astype(np.float32))
    result = metric.result()
    for key, value in EXPECTED_U.items():
        assert float(result[key]) == pytest.approx(value, abs=1e-6), key
    logits = np.log(PROBS / (1 - PROBS)).astype(np.float32)
    tf_counts = metrics.batch_counts(tf.constant(LABELS_U, tf.float32), tf.constant(logits))
    np_counts = metrics.counts_numpy(LABELS_U, PROBS > 0.5)
    assert set(tf_counts) == set(np_counts) == set(metrics.COUNT_KEYS)
    for key in metrics.COUNT_KEYS:
        np.testing.assert_allclose(tf_counts[key].numpy(), np_counts[key], atol=1e-6, err_msg=key)


def test_random_unknowns_equal_dropping_them_by_hand():
    # Cross-check against a direct per-attribute / per-image loop.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(40, 6))
    labels[rng.random((40, 6)) < 0.35] = -1
    probs = rng.random((40, 6))
    result = metrics.compute_metrics(labels, probs)
    preds = probs > 0.5
    ma = []
    for m in range(6):
        k = labels[:, m] >= 0
        y, p = labels[k, m] == 1, preds[k, m]
        ma.append(((p & y).sum() / y.sum() + (~p & ~y).sum() / (~y).sum()) / 2)
    assert result["mA"] == pytest.approx(np.mean(ma))
    accs, precs, recs = [], [], []
    for i in range(40):
        k = labels[i] >= 0
        if not k.any():
            continue
        y, p = labels[i, k] == 1, preds[i, k]
        tp, fp, fn = (y & p).sum(), (~y & p).sum(), (y & ~p).sum()
        accs.append(tp / (tp + fp + fn) if tp + fp + fn else 0.0)
        precs.append(tp / (tp + fp) if tp + fp else 0.0)
        recs.append(tp / (tp + fn) if tp + fn else 0.0)
    assert (result["accuracy"], result["precision"], result["recall"]) == pytest.approx(
        (np.mean(accs), np.mean(precs), np.mean(recs)))
