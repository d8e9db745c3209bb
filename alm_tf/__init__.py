"""alm-tf: pedestrian attribute recognition with weakly-supervised
multi-scale attribute-specific localization (Tang et al., ICCV 2019)."""

__version__ = "0.1.0"

from alm_tf import layers  # noqa: F401  (registers the custom layers)
from alm_tf.config import ModelConfig
from alm_tf.model import build_model, build_model_from_config

__all__ = ["ModelConfig", "__version__", "build_model",
           "build_model_from_config"]
