"""Per-layer tests (STYLE.md pattern) for the model's custom layers."""


import numpy as np
import pytest
import tensorflow as tf

from alm_tf import ops as alm_ops
from alm_tf.layers import AttributeLocalization, LogitFusion, TorchPooling2D
from tests.layer_test_utils import run_layer_test


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- pooling
@pytest.mark.parametrize(
    "pool_type,size,stride,pad,shape",
    [("max", 3, 2, 0, (2, 128, 64, 3)), ("max", 3, 2, 0, (2, 7, 6, 2)),
     ("max", 3, 1, 1, (2, 8, 4, 3)), ("avg", 3, 1, 1, (2, 8, 5, 3)),
     ("max", 3, 2, 1, (1, 9, 4, 1))])
def test_torch_pooling_matches_torch(pool_type, size, stride, pad, shape):
    torch = pytest.importorskip("torch")
    x = _rng().normal(size=shape).astype(np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    if pool_type == "max":
        ref = torch.nn.MaxPool2d(size, stride, pad, ceil_mode=True)(xt)
    else:
        ref = torch.nn.AvgPool2d(size, stride, pad, ceil_mode=True,
                                 count_include_pad=True)(xt)
    got = TorchPooling2D(pool_type, size, stride, pad)(x)
    np.testing.assert_allclose(got, ref.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_stem_pool_sizes_are_ceil_mode():
    layer = TorchPooling2D("max", 3, 2, 0)
    assert layer.compute_output_shape((None, 128, 64, 8)) == (None, 64, 32, 8)
    assert layer.compute_output_shape((None, 64, 32, 8)) == (None, 32, 16, 8)


def test_torch_pooling_layer_contract(tmp_path):
    x = _rng().normal(size=(2, 9, 6, 3)).astype(np.float32)
    run_layer_test(TorchPooling2D, dict(pool_type="avg", pool_size=3,
                                        strides=1, padding=1),
                   x, tmp_path, expected_num_trainable_weights=0,
                   expected_output_shapes=[(2, 9, 6, 3)])


@pytest.mark.parametrize("kwargs,match", [
    (dict(pool_type="min"), "pool_type='min'"),
    (dict(pool_size=0), "pool_size=0"),
    (dict(padding=2, pool_size=3), "padding=2"),
])
def test_torch_pooling_rejects_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TorchPooling2D(**kwargs)


# ------------------------------------------------------------------ fusion
@pytest.mark.parametrize("mode", ["max", "mean"])
def test_logit_fusion(mode, tmp_path):
    xs = [_rng(i).normal(size=(2, 5)).astype(np.float32) for i in range(4)]
    out = np.asarray(LogitFusion(mode)(xs))
    ref = np.max(xs, 0) if mode == "max" else np.mean(xs, 0)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    run_layer_test(LogitFusion, dict(mode=mode), xs, tmp_path,
                   expected_output_shapes=[(2, 5)])
    with pytest.raises(ValueError, match="mode='vote'"):
        LogitFusion("vote")


# --------------------------------------------------------------------- ALM
def _parts(combine, lateral, seed=0):
    rng = _rng(seed)
    if combine == "none":
        shapes = [(2, 6, 4, 12 if lateral else 16)]
    else:
        shapes = [(2, 2, 1, 16), (2, 3, 2, 16), (2, 6, 4, 12 if lateral else 16)]
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


def _explicit_alm(layer, parts):
    """The ALM the slow way: build the level map, resample, average."""
    maps = [tf.constant(p) for p in parts]
    if layer.lateral_units:
        maps[-1] = tf.einsum("nhwc,cd->nhwd", maps[-1],
                             layer.lateral_kernel) + layer.lateral_bias
    x = maps[0]
    for nxt in maps[1:]:
        up = alm_ops.resize_features(x, nxt.shape[1:3], layer.upsampling)
        x = up + nxt if layer.combine == "add" else tf.concat([up, nxt], -1)
    logits, boxes = [], []
    for m in range(layer.num_attributes):
        mean = tf.reduce_mean(x, axis=(1, 2))
        if layer.channel_attention:
            hidden = tf.nn.relu(mean @ layer.att_kernel1[m] + layer.att_bias1[m])
            att = tf.sigmoid(hidden @ layer.att_kernel2[m] + layer.att_bias2[m])
            xm = x * att[:, None, None, :] + x
        else:
            xm = x
        raw = tf.reduce_mean(xm, axis=(1, 2)) @ layer.box_kernel[m] + \
            layer.box_bias[m]
        theta = alm_ops.constrain_theta(raw)
        sampled = alm_ops.bilinear_resample(xm, theta)
        feat = tf.reduce_mean(sampled, axis=(1, 2))
        logits.append(tf.reduce_sum(feat * layer.cls_kernel[m], -1)
                      + layer.cls_bias[m])
        boxes.append(alm_ops.theta_to_boxes(theta))
    return tf.stack(logits, 1), tf.stack(boxes, 1)


@pytest.mark.parametrize("combine", ["concat", "add", "none"])
@pytest.mark.parametrize("channel_attention", [True, False])
@pytest.mark.parametrize("upsampling", ["bilinear", "nearest"])
@pytest.mark.parametrize("lateral", [None, 16])
def test_alm_equals_explicit_resampling(combine, channel_attention,
                                        upsampling, lateral):
    parts = _parts(combine, lateral)
    layer = AttributeLocalization(3, combine=combine, upsampling=upsampling,
                                  channel_attention=channel_attention,
                                  reduction=4, lateral_units=lateral)
    logits, boxes = layer(parts)
    ref_logits, ref_boxes = _explicit_alm(layer, parts)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-5)
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-6)
    channels = 16 * (3 if combine == "concat" else 1)
    assert layer.channels == channels


@pytest.mark.parametrize("combine,lateral", [("concat", 16), ("add", None),
                                             ("none", None)])
def test_alm_layer_contract(combine, lateral, tmp_path):
    parts = _parts(combine, lateral, seed=3)
    run_layer_test(AttributeLocalization,
                   dict(num_attributes=3, combine=combine, reduction=4,
                        lateral_units=lateral),
                   parts, tmp_path,
                   expected_num_trainable_weights=8 + (2 if lateral else 0),
                   expected_output_shapes=[(2, 3), (2, 3, 4)])


def test_alm_parameter_count_matches_official_formula():
    c, m = 768, 51
    layer = AttributeLocalization(m)
    layer.build([(None, 8, 4, 256), (None, 16, 8, 256), (None, 32, 16, 256)])
    count = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    per_alm = c * c // 16 + c // 16 + c * c // 16 + c + 4 * c + 4 + c + 1
    assert count == m * per_alm == 3_997_839


def test_alm_never_builds_per_attribute_maps():
    """The graph holds no tensor with both an attribute and an H x W axis."""
    parts = [tf.TensorSpec((2, 8, 4, 256)), tf.TensorSpec((2, 16, 8, 256)),
             tf.TensorSpec((2, 32, 16, 320))]
    layer = AttributeLocalization(51, lateral_units=256)
    fn = tf.function(lambda a, b, c: layer([a, b, c]))
    graph = fn.get_concrete_function(*parts).graph
    for op in graph.get_operations():
        for out in op.outputs:
            if out.shape.rank is not None and out.shape.num_elements():
                assert out.shape.num_elements() < 2 * 51 * 32 * 16 * 64, (
                    op.name, out.shape)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_attributes=0), "num_attributes=0"),
    (dict(num_attributes=2, combine="mul"), "combine='mul'"),
    (dict(num_attributes=2, upsampling="cubic"), "upsampling='cubic'"),
    (dict(num_attributes=2, lateral_units=-1), "lateral_units=-1"),
])
def test_alm_rejects_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttributeLocalization(**kwargs)


def test_alm_rejects_bad_inputs():
    with pytest.raises(ValueError, match="equal channels"):
        AttributeLocalization(2, combine="add")(
            [np.zeros((1, 2, 2, 8), np.float32), np.zeros((1, 4, 4, 4),
                                                            np.float32)])
    with pytest.raises(ValueError, match="rank-4"):
        AttributeLocalization(2)([np.zeros((1, 4, 8), np.float32)])


def test_alm_box_gradient_is_real():
    """The box regressor receives gradient through the sampler."""
    parts = _parts("concat", None)
    layer = AttributeLocalization(2, reduction=4)
    with tf.GradientTape() as tape:
        logits, _ = layer(parts)
        loss = tf.reduce_sum(logits)
    grad = tape.gradient(loss, layer.box_kernel)
    assert np.abs(np.asarray(grad)).max() > 1e-6

