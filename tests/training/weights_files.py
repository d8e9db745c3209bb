"""Pretrained-weights files made locally, in the layouts users download (no network)."""

from __future__ import annotations

import os

import keras
import numpy as np

from alm_tf.backbones.registry import REGISTRY


def cadene_bn_inception_file(path) -> dict:
    """A file laid out as Cadene's `bn_inception-52deb4733.pth`, with random values.

    BN-Inception's conv and BN names as in the official model without
    `main_branch.`, the batch-norm vectors of every other layer shaped
    (1, C) (as some conversions of that Caffe model store them), and an
    ImageNet classifier `last_linear`. Returns the numpy values written.
    """
    import torch  # optional dependency: imported only where used

    from alm_tf.testing import torch_reference as ref  # optional dependency: imported only where used

    state = ref.BNInception().state_dict()
    gen = torch.Generator().manual_seed(7)
    written, flat = {}, 0
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        random = torch.randn(value.shape, generator=gen) * 0.05
        if key.endswith("running_var"):
            random = random.abs() + 0.5
        if value.dim() == 1 and key.endswith(("running_mean", "running_var", "weight", "bias")) \
                and "_bn." in key:
            flat += 1
            if flat % 2:
                random = random.reshape(1, -1)
        state[key] = random
        written[key] = random.reshape(value.shape).numpy()
    state["last_linear.weight"] = torch.randn((1000, 1024), generator=gen) * 0.01
    state["last_linear.bias"] = torch.zeros(1000)
    torch.save(state, os.fspath(path))
    return written


def keras_notop_file(name: str, path, input_shape=(64, 32, 3)) -> list:
    """A `*_notop.h5` file as keras.applications downloads it (legacy HDF5,
    the application with its own preprocessing), random weights. Returns them."""
    spec = REGISTRY[name]
    kwargs = {k: v for k, v in spec.application_kwargs if k != "include_preprocessing"}
    app = getattr(keras.applications, spec.application)(
        include_top=False, weights=None, input_shape=input_shape, **kwargs)
    rng = np.random.default_rng(3)
    app.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in app.get_weights()])
    app.save(os.fspath(path))
    return app.get_weights()
