"""In-process trainer tests on the tiny model (fast)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf import losses
from alm_tf.layers.attribute_localization import AttributeLocalization
from alm_tf.training import ConfigError, NonFiniteLossError, TrainConfig, loop, train
from alm_tf.training import step as step_lib
from alm_tf.testing import mini_model
from tests.training import train_helpers as h


def _tags(log_dir):
    tags = set()
    for name in os.listdir(log_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            tags.update(value.tag for value in event.summary.value)
    return tags


_config = h.train_config


def test_loss_falls_and_model_dir_layout(data_dir, tmp_path):
    result = train(_config(data_dir, tmp_path, epochs=5), model_builder=h.tiny_model)
    losses = [r["train"]["loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.step == 5 * (48 // 8)
    for name in ("config.json", "final.keras", "best.keras", "checkpoints/checkpoint"):
        assert os.path.exists(tmp_path / name), name
    assert _tags(tmp_path / "logs" / "train") >= {
        "loss/total", "loss/level1", "loss/level2", "loss/level3", "loss/global",
        "learning_rate", "images_per_second", "input_wait_fraction", "train_mA"}
    assert _tags(tmp_path / "logs" / "validation") >= {"mA", "f1"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["attributes"] == list(h.ATTRIBUTES)
    assert config["model"]["num_attributes"] == 3
    assert (config["model"]["image_height"], config["model"]["image_width"]) == (64, 32)
    assert config["format_version"] == 2 and "image_height" not in config["train"]
    assert config["data"]["val_split"] == "val"
    assert all("val" in r for r in result.history)
    # Re-running the finished command resumes at the end: no more steps.
    again = train(_config(data_dir, tmp_path, epochs=5), model_builder=h.tiny_model)
    assert again.step == result.step and again.history == []


def test_learning_rate_schedule_and_seeds():
    config = TrainConfig(data_dir="d", model_dir="m", decay_epochs=(10, 20))
    assert loop.learning_rate_for_epoch(config, 0) == pytest.approx(1e-4)
    assert loop.learning_rate_for_epoch(config, 10) == pytest.approx(1e-5)
    assert loop.learning_rate_for_epoch(config, 29) == pytest.approx(1e-6)
    assert loop.epoch_seed(3, 1) != loop.epoch_seed(3, 2)


def test_l2_decay_added_to_gradient_like_pytorch(data_dir, tmp_path):
    # One step with lr so small Adam's first step is ~lr*sign(g): compare the
    # direction with/without decay on a variable whose data gradient is 0.
    base = dict(epochs=1, steps_per_epoch=1, val_split="none", learning_rate=1e-3)
    plain = train(_config(data_dir, tmp_path / "a", weight_decay=0.0, **base),
                  model_builder=h.tiny_model).model
    decayed = train(_config(data_dir, tmp_path / "b", weight_decay=1e6, **base),
                    model_builder=h.tiny_model).model
    # With a huge L2 term, Adam's first step is -lr * sign(w) for every weight.
    kernel0 = keras.utils.set_random_seed(1) or h.tiny_model(
        __import__("alm_tf").ModelConfig(num_attributes=3, image_height=64, image_width=32)
    ).get_layer("conv2").kernel.numpy()
    step = decayed.get_layer("conv2").kernel.numpy() - kernel0
    np.testing.assert_allclose(step, -1e-3 * np.sign(kernel0), atol=2e-6)
    assert not np.allclose(plain.get_layer("conv2").kernel.numpy(),
                           decayed.get_layer("conv2").kernel.numpy())


def test_l2_gradients_are_the_term_in_the_objective():
    """step.l2_gradients adds what autodiff computes for 0.5 * l2 * ||w||^2 (to float
    rounding); with loss scaling the term is scaled as the loss's gradients are."""
    model = mini_model.mini_alm_model(seed=0)
    variables = model.trainable_variables
    images = tf.constant(mini_model.images(4))
    labels = tf.constant(np.random.default_rng(0).integers(0, 2, (4, 3)), tf.float32)
    l2 = 5e-4
    with tf.GradientTape(persistent=True) as tape:
        loss = losses.alm_loss(labels, model(images, training=True), tf.constant([0.3, 0.5, 0.2]),
                               "official", global_batch_size=4)[0]
        objective = loss + 0.5 * l2 * tf.add_n(
            [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables])
    in_objective = tape.gradient(objective, variables)
    grads = tape.gradient(loss, variables)
    written_out = step_lib.l2_gradients(grads, variables, l2)
    assert len(in_objective) == len(written_out) > 30
    largest = max(float(np.abs(a).max()) for a in in_objective)  # rounding of the sums' terms
    for a, b in zip(in_objective, written_out):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6 * largest)

    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    optimizer.build(variables)
    scale = 32768.0  # the initial loss scale, a power of 2: scaling is exact
    scaled = step_lib.l2_gradients([scale * g for g in grads], variables, l2, optimizer.scale_loss)
    for a, b in zip(written_out, scaled):
        np.testing.assert_array_equal(b.numpy(), scale * a.numpy())
    term = step_lib.l2_gradients([None, tf.zeros(variables[1].shape)], variables[:2], l2)
    for t, v in zip(term, variables[:2]):
        np.testing.assert_allclose(t.numpy(), l2 * v.numpy(), rtol=1e-6)


def test_mixed_float16_uses_loss_scaling(data_dir, tmp_path):
    result = train(_config(data_dir, tmp_path, epochs=1, steps_per_epoch=2,
                           mixed_precision="mixed_float16", val_split="none"),
                   model_builder=h.tiny_model)
    assert np.isfinite(result.history[-1]["train"]["loss"])


def test_jit_compile(data_dir, tmp_path):
    result = train(_config(data_dir, tmp_path, epochs=1, steps_per_epoch=2,
                           jit_compile=True, val_split="none"),
                   model_builder=h.tiny_model)
    assert result.step == 2


def test_nan_loss_stops_with_step_and_keeps_checkpoint(data_dir, tmp_path):
    config = _config(data_dir, tmp_path, epochs=2, checkpoint_every_steps=2,
                     learning_rate=1e30, val_split="none")
    with pytest.raises(NonFiniteLossError, match=r"at step \d+") as info:
        train(config, model_builder=h.tiny_model)
    assert "Last good checkpoint" in str(info.value)
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    if latest:  # the intact checkpoint holds finite weights
        reader = tf.train.load_checkpoint(latest)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), name


def test_init_checkpoint_loads_matching_layers(data_dir, tmp_path):
    first = train(_config(data_dir, tmp_path / "a", epochs=1, val_split="none"),
                  model_builder=h.tiny_model)
    source = str(tmp_path / "a" / "final.keras")
    # A baseline (no levels) shares conv1/conv1_bn/conv2/finalfc, lacks head1..3.
    second = train(_config(data_dir, tmp_path / "b", epochs=1, steps_per_epoch=1,
                           alm_levels=(), init_checkpoint=source, val_split="none",
                           learning_rate=1e-12, weight_decay=0.0),
                   model_builder=h.tiny_model)
    assert second.init_matched == (4, 0)
    np.testing.assert_allclose(second.model.get_layer("conv2").kernel.numpy(),
                               first.model.get_layer("conv2").kernel.numpy(), atol=1e-8)


def test_resume_refuses_changed_config(data_dir, tmp_path):
    train(_config(data_dir, tmp_path, epochs=1, steps_per_epoch=1, val_split="none"),
          model_builder=h.tiny_model)
    with pytest.raises(ConfigError, match="batch_size"):
        train(_config(data_dir, tmp_path, epochs=2, batch_size=4, val_split="none"),
              model_builder=h.tiny_model)


@pytest.mark.parametrize("kwargs,flag", [
    (dict(batch_size=0), "batch_size"),
    (dict(strategy="gpu"), "strategy"),
    (dict(decay_epochs=(20, 10)), "decay_epochs"),
    (dict(init_checkpoint="x.h5"), "init_checkpoint"),
])
def test_config_validation(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(data_dir="d", model_dir="m", **kwargs)


def test_unknown_split_is_a_config_error(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="train_split"):
        train(_config(data_dir, tmp_path, train_split="trainval"), model_builder=h.tiny_model)


def test_trainval_manifest_defaults(tmp_path):
    data_dir = str(tmp_path / "data")
    h.write_dataset(data_dir, splits=(("trainval", 16), ("test", 8)))
    result = train(_config(data_dir, tmp_path / "m", epochs=1), model_builder=h.tiny_model)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["data"]["train_split"] == "trainval"
    assert config["data"]["val_split"] is None  # never the test split by default
    assert result.step == 2 and "val" not in result.history[0]
    assert (tmp_path / "m" / "best.keras").exists()


def test_freeze_backbone_trains_only_the_heads(data_dir, tmp_path):
    first = train(_config(data_dir, tmp_path / "a", epochs=1, val_split="none"),
                  model_builder=h.tiny_model)
    source = str(tmp_path / "a" / "final.keras")
    second = train(_config(data_dir, tmp_path / "b", epochs=2, val_split="none",
                           init_checkpoint=source, freeze_backbone=True),
                   model_builder=h.tiny_model)
    for name in ("conv1", "conv1_bn", "conv2"):  # backbone: weights and BN statistics kept
        for before, after in zip(first.model.get_layer(name).get_weights(),
                                 second.model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(before, after)
    assert not np.allclose(first.model.get_layer("finalfc").kernel.numpy(),
                           second.model.get_layer("finalfc").kernel.numpy())
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["train"]["freeze_backbone"] is True
    with pytest.raises(ConfigError, match="freeze_backbone"):  # a resume keeps it
        train(_config(data_dir, tmp_path / "b", epochs=3, val_split="none",
                      init_checkpoint=source), model_builder=h.tiny_model)


def _tiny_alm_model(model_config, record=None):
    """A conv stem and one real ALM layer (level 1) beside the global branch."""
    m = model_config.num_attributes
    inputs = keras.Input((model_config.image_height, model_config.image_width, 3), name="images")
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="conv1")(inputs)
    logits, boxes = AttributeLocalization(m, combine="none", reduction=4, dtype="float32",
                                          name="st_3b")([x])
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    glob = keras.layers.Dense(m, dtype="float32", name="finalfc")(pooled)
    fused = keras.layers.Maximum(dtype="float32", name="fusion")([logits, glob])
    model = keras.Model(inputs, {"level1": logits, "global": glob, "logits": fused,
                                 "boxes": boxes}, name="tiny_alm")
    if record is not None:
        record.update({w.name: w.numpy().copy() for w in model.get_layer("st_3b").weights})
    return model


def test_box_options_zero_the_kernels_and_scale_their_updates(data_dir, tmp_path):
    start = {}
    frozen = train(_config(data_dir, tmp_path / "a", epochs=1, val_split="none", alm_levels=(1,),
                           box_kernel_init="zeros", box_lr_multiplier=0.0,
                           box_bias_lr_multiplier=0.0),
                   model_builder=lambda c: _tiny_alm_model(c, start))
    layer = frozen.model.get_layer("st_3b")
    assert np.abs(start["box_kernel"]).max() > 0  # PyTorch's init before the reset
    np.testing.assert_array_equal(layer.box_kernel.numpy(), 0.0)
    np.testing.assert_array_equal(layer.box_bias.numpy(), start["box_bias"])
    assert not np.allclose(layer.cls_kernel.numpy(), start["cls_kernel"])
    boxes = frozen.model.predict(np.random.default_rng(0).random((2, 64, 32, 3)), verbose=0)["boxes"]
    np.testing.assert_allclose(boxes[0], boxes[1])  # one box for every image
    config = json.loads((tmp_path / "a" / "config.json").read_text())["train"]
    assert (config["box_kernel_init"], config["box_bias_lr_multiplier"]) == ("zeros", 0.0)

    start = {}
    moving = train(_config(data_dir, tmp_path / "b", epochs=1, val_split="none", alm_levels=(1,),
                           box_kernel_init="zeros", box_bias_lr_multiplier=10.0),
                   model_builder=lambda c: _tiny_alm_model(c, start))
    layer = moving.model.get_layer("st_3b")
    assert not np.allclose(layer.box_bias.numpy(), start["box_bias"])
    assert np.abs(layer.box_kernel.numpy()).max() > 0
    # A resume restores the optimizer with per-weight rates and goes on.
    again = train(_config(data_dir, tmp_path / "b", epochs=2, val_split="none", alm_levels=(1,),
                          box_kernel_init="zeros", box_bias_lr_multiplier=10.0),
                  model_builder=_tiny_alm_model)
    assert again.step == 2 * moving.step
    assert not np.allclose(again.model.get_layer("st_3b").box_bias.numpy(), layer.box_bias.numpy())


@pytest.mark.parametrize("field, value", [("box_lr_multiplier", -0.5),
                                          ("box_bias_lr_multiplier", float("inf")),
                                          ("box_kernel_init", "ones")])
def test_bad_box_options_are_refused_by_name(data_dir, tmp_path, field, value):
    with pytest.raises(ConfigError, match=field):
        _config(data_dir, tmp_path, **{field: value})


class _Recorder(keras.callbacks.Callback):
    """Every callback call, in order."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("begin",))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch", batch, tuple(sorted(logs))))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch", epoch, tuple(sorted(logs.get("val", {})))))

    def on_train_end(self, logs=None):
        self.calls.append(("end", logs["step"]))


def test_callbacks_see_every_step_and_each_validated_epoch(data_dir, tmp_path):
    recorder = _Recorder()
    train(_config(data_dir, tmp_path, epochs=2), model_builder=h.tiny_model, callbacks=[recorder])
    per_epoch = 48 // 8
    calls = recorder.calls
    assert calls[0] == ("begin",) and calls[-1] == ("end", 2 * per_epoch)
    assert [c[1] for c in calls if c[0] == "batch"] == list(range(1, 2 * per_epoch + 1))
    assert {c[2] for c in calls if c[0] == "batch"} == {("learning_rate", "loss")}
    epochs = [c for c in calls if c[0] == "epoch"]
    assert [c[1] for c in epochs] == [0, 1] and all("mA" in c[2] for c in epochs)
    # Each epoch's end comes right after its last step, with validation done.
    assert calls.index(epochs[0]) == per_epoch + 1 and calls.index(epochs[1]) == 2 * per_epoch + 2
