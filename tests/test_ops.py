"""Math tests of the box sampler and the pyramid upsampling."""

import numpy as np
import pytest
import tensorflow as tf

from alm_tf import ops as alm_ops


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_identity_box_returns_input():
    x = _rng().normal(size=(2, 6, 5, 3)).astype(np.float32)
    theta = np.tile([[1.0, 1.0, 0.0, 0.0]], (2, 1)).astype(np.float32)
    out = alm_ops.bilinear_resample(x, theta)
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_known_shift_moves_pixels():
    # tx = 2 / W shifts the sampling grid by exactly one pixel to the right.
    h, w = 4, 8
    x = np.arange(h * w, dtype=np.float32).reshape(1, h, w, 1)
    theta = np.array([[1.0, 1.0, 2.0 / w, 0.0]], np.float32)
    out = np.asarray(alm_ops.bilinear_resample(x, theta))
    np.testing.assert_allclose(out[0, :, :-1, 0], x[0, :, 1:, 0], atol=1e-5)
    # Border clamping: the last column repeats the edge.
    np.testing.assert_allclose(out[0, :, -1, 0], x[0, :, -1, 0], atol=1e-5)
    # A half-size box at the top-left corner samples the quarter [0, H/2).
    theta = np.array([[0.5, 0.5, -0.5, -0.5]], np.float32)
    out = np.asarray(alm_ops.bilinear_resample(x, theta, output_size=(2, 4)))
    np.testing.assert_allclose(out[0, :, :, 0], x[0, :2, :4, 0], atol=1e-5)


def test_boxes_round_trip():
    theta = _rng().uniform(-0.9, 0.9, size=(3, 7, 4)).astype(np.float32)
    boxes = alm_ops.theta_to_boxes(theta)
    np.testing.assert_allclose(alm_ops.boxes_to_theta(boxes), theta, atol=1e-6)
    identity = alm_ops.theta_to_boxes(np.array([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(identity, [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("shape", [(8, 4), (5, 7), (1, 3)])
def test_rank1_equals_resample_then_average(shape):
    h, w = shape
    rng = _rng(1)
    x = rng.normal(size=(3, h, w, 4)).astype(np.float32)
    theta = np.concatenate(
        [rng.uniform(0.1, 1.0, size=(3, 2)), rng.uniform(-1, 1, size=(3, 2))],
        axis=1).astype(np.float32)
    theta[0] = [1.5, 0.3, 0.9, -0.8]  # box overhanging the border
    explicit = np.asarray(alm_ops.bilinear_resample(x, theta)).mean(axis=(1, 2))
    wy, wx = alm_ops.pooled_sampling_weights(tf.constant(theta), h, w)
    np.testing.assert_allclose(np.sum(wy, -1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.sum(wx, -1), 1.0, atol=1e-6)
    rank1 = np.einsum("nh,nw,nhwc->nc", wy, wx, x)
    np.testing.assert_allclose(rank1, explicit, atol=1e-5)


def test_sampler_gradients_match_finite_differences():
    rng = _rng(2)
    h, w = 6, 5
    x = tf.constant(rng.normal(size=(1, h, w, 2)), tf.float64)
    theta0 = np.array([[0.63, 0.41, 0.17, -0.23]])

    def f(theta):
        wy, wx = alm_ops.pooled_sampling_weights(theta, h, w)
        pooled = tf.einsum("nh,nw,nhwc->nc", wy, wx, x)
        return tf.reduce_sum(pooled * tf.constant([[1.0, -2.0]], tf.float64))

    theta = tf.Variable(theta0)
    with tf.GradientTape() as tape:
        value = f(theta)
    grad = tape.gradient(value, theta).numpy()
    eps = 1e-6
    numeric = np.zeros_like(theta0)
    for i in range(4):
        plus, minus = theta0.copy(), theta0.copy()
        plus[0, i] += eps
        minus[0, i] -= eps
        numeric[0, i] = (f(tf.constant(plus)) - f(tf.constant(minus))) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert np.all(grad != 0)


def test_explicit_resample_gradients_reach_theta():
    x = tf.constant(_rng(3).normal(size=(1, 6, 4, 1)), tf.float32)
    theta = tf.Variable([[0.5, 0.6, 0.1, -0.2]])
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(alm_ops.bilinear_resample(x, theta) ** 2)
    grad = tape.gradient(out, theta)
    assert grad is not None and np.all(np.isfinite(grad))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("sizes", [(4, 8), (3, 7), (8, 16)])
def test_upsampling_matrix_matches_torch(mode, sizes):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # optional dependency: imported only where used

    in_size, out_size = sizes
    x = torch.randn(1, 1, in_size, 2, dtype=torch.float64)
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    expected = F.interpolate(x, size=(out_size, 2), mode=mode, **kwargs)
    matrix = alm_ops.upsampling_matrix(in_size, out_size, mode)
    got = np.einsum("oi,ic->oc", matrix, x[0, 0].numpy())
    np.testing.assert_allclose(got, expected[0, 0].numpy(), atol=1e-12)


def test_grid_sample_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # optional dependency: imported only where used

    rng = _rng(4)
    x = rng.normal(size=(2, 7, 5, 3)).astype(np.float32)
    theta = np.array([[0.7, 0.4, 0.5, -0.6], [1.2, 0.9, -0.3, 0.95]],
                     np.float32)
    mat = np.zeros((2, 2, 3), np.float32)
    mat[:, 0, 0], mat[:, 1, 1] = theta[:, 0], theta[:, 1]
    mat[:, 0, 2], mat[:, 1, 2] = theta[:, 2], theta[:, 3]
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    grid = F.affine_grid(torch.from_numpy(mat), xt.shape, align_corners=False)
    expected = F.grid_sample(xt, grid, mode="bilinear", padding_mode="border",
                             align_corners=False).permute(0, 2, 3, 1).numpy()
    got = np.asarray(alm_ops.bilinear_resample(x, theta))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_resize_features_bilinear():
    x = _rng(5).normal(size=(1, 2, 3, 1)).astype(np.float32)
    out = np.asarray(alm_ops.resize_features(x, (4, 6), "bilinear"))
    assert out.shape == (1, 4, 6, 1)
    np.testing.assert_allclose(out.mean(), x.mean(), atol=1e-5)


def test_upsampling_mode_rejected():
    with pytest.raises(ValueError, match="Received: mode='cubic'"):
        alm_ops.upsampling_matrix(2, 4, "cubic")
