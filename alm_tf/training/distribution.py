"""Distribution strategies and the per-worker bookkeeping they need."""

from __future__ import annotations

import json
import os

import tensorflow as tf


def make_strategy(name: str, tpu_address: str = "") -> tf.distribute.Strategy:
    """Creates a strategy by name. Call before any other TF op runs.

    `multi_worker` reads the cluster from TF_CONFIG (CPU/GPU collectives
    over gRPC); `tpu` resolves `tpu_address` (empty = the local TPU).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy=multi_worker needs the TF_CONFIG environment variable.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(
        "strategy must be one of ['default', 'mirrored', 'multi_worker', 'tpu']. "
        f"Received: strategy={name!r}"
    )


def worker_info(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """(task_type, task_id) of this process; ("chief", 0) outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return "chief", 0
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return "chief", 0
    return task_type, int(task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the shared outputs (model dir files)."""
    task_type, task_id = worker_info(strategy)
    if task_type == "chief":
        return True
    if task_type == "worker" and task_id == 0:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        return "chief" not in cluster
    return False


def sync_non_trainable(strategy: tf.distribute.Strategy, variables) -> None:
    """Averages mirrored non-trainable variables (BN statistics) across replicas.

    Keras 3 creates batch-norm moving statistics with aggregation NONE, so
    under a multi-replica strategy every replica keeps its own copy. The
    trainer averages them at every checkpoint (and before validation and
    the final save) so that all replicas and workers hold one value, and
    uninterrupted and resumed runs do it at the same steps.
    """
    if strategy.num_replicas_in_sync == 1:
        return
    # Keras 3 variables wrap the tf.Variable (a MirroredVariable here).
    variables = [getattr(v, "value", v) for v in variables]
    variables = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    if not variables:
        return

    @tf.function
    def _sync():
        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            values = ctx.all_reduce(
                tf.distribute.ReduceOp.MEAN, [tf.identity(v) for v in variables]
            )
            for var, value in zip(variables, values):
                var.assign(value)

        strategy.run(replica_fn)

    _sync()
