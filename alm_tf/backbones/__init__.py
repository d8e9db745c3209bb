"""Backbones: functional builders returning feature taps at strides 8/16/32.

Every backbone is one entry of `alm_tf.backbones.registry` (pure data:
`alm_tf.config` reads it without importing Keras, so this package's
`__init__` imports nothing); `alm_tf.backbones.factory` builds one by name
and sets its weights. Pretrained weights (`backbone_weights`):

- `keras.applications` backbones: `"imagenet"` (Keras' download) or the
  local `*_notop.h5` file Keras downloads (or a `.weights.h5` saved from
  such a backbone); loaded while the backbone is built.
- BN-Inception: `"imagenet"` (the PyTorch file the paper's code starts
  from, `bn_inception-52deb4733.pth` of Cadene's pretrained-models,
  downloaded where a network exists) or that file given locally; any
  BN-Inception state dict in the official names works, an official ALM
  checkpoint too (its `main_branch.*` tensors). Its layers live in the ALM
  model itself, so the weights are set once the model is built
  (`load_backbone_weights`), through `alm_tf.torch_import`, which reads the
  file with `torch.load(weights_only=True)` (the `torch` extra).
"""
