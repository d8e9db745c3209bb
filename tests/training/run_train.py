"""Subprocess entry: train the tiny model with a TrainConfig given as JSON.

  python -m tests.training.run_train CONFIG_JSON WEIGHTS_NPZ [LOGICAL_CPUS]

Run as a module from the repository root, like the binaries
(`python -m pipelines.train`): the root is then the first entry of sys.path,
so `alm_tf` and `tests` import from this checkout without a PYTHONPATH.
"""

import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    config_json, weights_path = sys.argv[1], sys.argv[2]
    cpus = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    # TensorFlow and the project import here, after TF_CPP_MIN_LOG_LEVEL, and the
    # logical CPUs are configured before anything can start TensorFlow's runtime.
    import tensorflow as tf

    if cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)
    from alm_tf.training import train
    from tests.training.train_helpers import tiny_model, train_config

    with open(config_json) as f:
        config = train_config(**json.load(f))
    result = train(config, model_builder=tiny_model)
    weights = result.model.get_weights()
    np.savez(weights_path, **{str(i): w for i, w in enumerate(weights)})
    print("REPLICAS", result.replicas)
    print("OUTPUT_DTYPES", json.dumps({k: str(v.dtype) for k, v in result.model.output.items()}))
    print("CONV1", result.model.get_layer("conv1").compute_dtype,
          result.model.get_layer("conv1").kernel.dtype)
    print("STEP", result.step, "HISTORY", json.dumps(result.history))


if __name__ == "__main__":
    main()
