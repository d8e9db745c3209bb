"""alm-tf: pedestrian attribute recognition with weakly-supervised
multi-scale attribute-specific localization (Tang et al., ICCV 2019).

Importing the package registers the custom layers (so that
`keras.saving.load_model` reads the project's models) and imports Keras,
except in a process started with `DATA_ONLY_ENV=1`: one that handles data
and loads no model (the Beam conversion's local workers), where the import
of TensorFlow and Keras would be most of the process's start-up. There the
names below load on first use.
"""

import importlib as _importlib
import os as _os

__version__ = "0.1.0"

#: The environment variable that makes `import alm_tf` skip Keras (value "1").
DATA_ONLY_ENV = "ALM_TF_DATA_ONLY"

_HOMES = {"ModelConfig": "alm_tf.config", "build_model": "alm_tf.model", "build_model_from_config": "alm_tf.model"}

if _os.environ.get(DATA_ONLY_ENV) != "1":
    from alm_tf import layers  # noqa: F401  (registers the custom layers)
    from alm_tf.config import ModelConfig
    from alm_tf.model import build_model, build_model_from_config


def __getattr__(name):  # reached only for the names a data-only import left out
    if name in _HOMES:
        return getattr(_importlib.import_module(_HOMES[name]), name)
    if name == "layers":
        return _importlib.import_module("alm_tf.layers")
    raise AttributeError(f"module 'alm_tf' has no attribute {name!r}")


__all__ = ["DATA_ONLY_ENV", "ModelConfig", "__version__", "build_model",
           "build_model_from_config"]
