"""--backbone_weights from every binary that builds a model: local files in
the layouts users download, ImageNet where no network is, refusals."""

import keras
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from alm_tf import model as model_lib
from alm_tf.backbones import registry
from alm_tf.config import ModelConfig
from alm_tf.training import ConfigError, train
from pipelines import train as train_cli
from tests.training import train_helpers as h
from tests.training.weights_files import cadene_bn_inception_file, keras_notop_file


class _Stop(Exception):
    pass


class _CheckStart(keras.callbacks.Callback):
    """Records the model's weights as training starts, then stops the run."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def on_train_begin(self, logs=None):
        self.weights = self.model.get_layer(self.layer).get_weights()
        raise _Stop


def test_alm_train_flags_start_resnet50_from_its_notop_file(data_dir, tmp_path):
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    expected = keras_notop_file("resnet50", path)
    with flagsaver.flagsaver():
        flags.FLAGS(["alm-train", f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'm'}",
                     "--backbone=resnet50", f"--backbone_weights={path}", "--image_height=64",
                     "--image_width=32", "--batch_size=8", "--noprogress"])
        config = train_cli._config()  # pylint: disable=protected-access
    assert config.model.backbone_weights == str(path) and config.model.backbone == "resnet50"
    check = _CheckStart("backbone")
    with pytest.raises(_Stop):
        train(config, callbacks=[check])
    # The backbone model holds the preprocessing layer (no weights) and the application's.
    assert len(check.weights) == len(expected)
    for got, want in zip(check.weights, expected):
        np.testing.assert_array_equal(got, want)


def test_alm_train_starts_bn_inception_from_the_imagenet_pth(data_dir, tmp_path):
    """--backbone_weights=bn_inception-52deb4733.pth, read directly (no .keras detour)."""
    path = tmp_path / "bn_inception-52deb4733.pth"
    written = cadene_bn_inception_file(path)
    config = h.train_config(data_dir, tmp_path / "m", backbone_weights=str(path))
    check = _CheckStart("inception_5b_pool_proj_bn")
    with pytest.raises(_Stop):
        train(config, callbacks=[check])
    gamma, beta, mean, var = check.weights
    np.testing.assert_array_equal(mean, written["inception_5b_pool_proj_bn.running_mean"])
    np.testing.assert_array_equal(var, written["inception_5b_pool_proj_bn.running_var"])
    np.testing.assert_array_equal(gamma, written["inception_5b_pool_proj_bn.weight"])


def test_an_official_alm_checkpoint_can_start_the_backbone(tmp_path):
    import torch  # optional dependency: imported only where used

    from alm_tf.testing import torch_reference as ref  # optional dependency: imported only where used

    torch_model = ref.ALMNet(3)
    path = tmp_path / "alm_rap.pth.tar"
    torch.save(ref.official_checkpoint(torch_model), path)
    model = model_lib.build_model_from_config(ModelConfig(num_attributes=5, image_height=64,
                                                          image_width=32, backbone_weights=str(path)))
    np.testing.assert_array_equal(
        model.get_layer("inception_3a_1x1").kernel.numpy(),
        torch_model.main_branch.inception_3a_1x1.weight.detach().numpy().transpose(2, 3, 1, 0))


def test_a_cadene_file_with_a_missing_tensor_is_one_line(tmp_path):
    import torch  # optional dependency: imported only where used

    path = tmp_path / "bn_inception.pth"
    cadene_bn_inception_file(path)
    state = torch.load(path)
    del state["inception_4d_3x3.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="lacks tensor 'inception_4d_3x3.weight'"):
        model_lib.build_model_from_config(ModelConfig(num_attributes=2, image_height=64,
                                                      image_width=32, backbone_weights=str(path)))


def test_bn_inception_imagenet_without_network_names_the_file(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on http://data.lip6.fr: [Errno -3] name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError) as info:
        model_lib.build_model_from_config(ModelConfig(num_attributes=2, image_height=64,
                                                      image_width=32, backbone_weights="imagenet"))
    message = str(info.value)
    assert "\n" not in message and registry.BN_INCEPTION_IMAGENET_URL in message
    assert "backbone_weights='/path/to/bn_inception-52deb4733.pth'" in message


@pytest.mark.parametrize("backbone,weights,needle", [
    ("resnet50", "bn_inception-52deb4733.pth", "ending in .h5"),
    ("bn_inception", "resnet50_notop.h5", "ending in .pth"),
    ("bn_inception", "nope.pth", "not found"),
])
def test_bad_backbone_weights_are_refused_by_name(backbone, weights, needle):
    with pytest.raises(ValueError, match=needle) as info:
        model_lib.build_model_from_config(ModelConfig(num_attributes=2, backbone=backbone,
                                                      image_height=64, image_width=32,
                                                      backbone_weights=weights))
    assert "\n" not in str(info.value)


def test_resume_may_drop_the_weights_flag_but_not_change_it(data_dir, tmp_path):
    """On a resume the checkpoint holds the weights: the flag may be dropped (the
    file is not read again), a different file is another run."""
    first = dict(epochs=1, steps_per_epoch=1, val_split="none")
    train(h.train_config(data_dir, tmp_path / "m", backbone_weights="imagenet", **first),
          model_builder=h.tiny_model)  # the tiny model reads no weights
    again = train(h.train_config(data_dir, tmp_path / "m", **dict(first, epochs=2)),
                  model_builder=h.tiny_model)
    assert again.step == 2
    with pytest.raises(ConfigError, match="backbone_weights"):
        train(h.train_config(data_dir, tmp_path / "m", backbone_weights="other.pth",
                             **dict(first, epochs=3)), model_builder=h.tiny_model)
