"""Subprocess trainer tests: kill-and-resume, mirrored, multi-worker."""

import json
import os
import signal
import socket
import threading
import time

import numpy as np
from tensorflow.python.framework import config as tf_config

from alm_tf.training import train
from tests import fresh_python
from tests.training import train_helpers as h

# run_train runs as a module from the repository root, as `python -m` runs the binaries.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_config(path, data_dir, model_dir, **kw):
    config = dict(data_dir=data_dir, model_dir=str(model_dir), image_height=64,
                  image_width=32, batch_size=8, epochs=4, learning_rate=1e-2,
                  seed=3, deterministic=True, checkpoint_every_steps=5, progress=False)
    config.update(kw)
    with open(path, "w") as f:
        json.dump(config, f)
    return str(path)


def _env(extra=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra or {})
    return env


def _start(config, weights, cpus=1, env=None):
    """run_train.py in a process of its own (fresh_python.py: forked from
    the worker's TensorFlow-only forkserver, or a new interpreter where
    `env` sets a variable TensorFlow reads at import)."""
    return fresh_python.start(["-m", "tests.training.run_train", config, str(weights), str(cpus)],
                              env=_env(env), cwd=ROOT)


def _finish(proc, timeout=180):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def _train_here(config_path):
    """run_train.py's training in this process (op determinism switched back
    off afterwards when it was off): the weights and the last step."""
    was_deterministic = tf_config.is_op_determinism_enabled()
    with open(config_path) as f:
        config = h.train_config(**json.load(f))
    try:
        result = train(config, model_builder=h.tiny_model)
    finally:
        if not was_deterministic:
            tf_config.disable_op_determinism()
    return result.model.get_weights(), result.step


def test_killed_and_resumed_run_equals_uninterrupted(data_dir, tmp_path):
    """A run SIGKILLed after its first checkpoint (a subprocess: the kill is
    the point) and resumed equals the uninterrupted run, bit for bit. The
    uninterrupted run goes on in this process while the victim runs, and the
    resume too (one TensorFlow start instead of three)."""
    ref_cfg = _write_config(tmp_path / "ref.json", data_dir, tmp_path / "ref")
    run_cfg = _write_config(tmp_path / "run.json", data_dir, tmp_path / "run")
    victim = _start(run_cfg, tmp_path / "killed.npz")
    state = tmp_path / "run" / "checkpoints" / "checkpoint"

    def kill_after_first_checkpoint():
        deadline = time.time() + 120
        while not state.exists() and victim.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()

    killer = threading.Thread(target=kill_after_first_checkpoint)
    killer.start()
    try:
        reference, _ = _train_here(ref_cfg)
    finally:
        killer.join()
    assert victim.returncode == -signal.SIGKILL, "run ended before it could be killed"
    assert not (tmp_path / "run" / "final.keras").exists()
    resumed, step = _train_here(run_cfg)
    assert step == 24
    assert len(reference) == len(resumed)
    for x, y in zip(reference, resumed):
        np.testing.assert_array_equal(x, y)


def test_mirrored_two_logical_cpus_mixed_bfloat16(data_dir, tmp_path):
    # Mirrored over 2 logical CPUs AND mixed_bfloat16 (float32 multi-replica
    # runs are covered by the multi-worker test). A fresh process with oneDNN
    # off: TF 2.21's oneDNN bfloat16 CPU kernels sporadically return garbage
    # on AMX machines (see BUILD_NOTES.md).
    cfg = _write_config(tmp_path / "m.json", data_dir, tmp_path / "m", strategy="mirrored",
                        epochs=2, deterministic=False, mixed_precision="mixed_bfloat16",
                        box_bias_lr_multiplier=10.0)  # the optimizer with per-weight rates
    out = _finish(_start(cfg, tmp_path / "m.npz", cpus=2, env={"TF_ENABLE_ONEDNN_OPTS": "0"}))
    assert "REPLICAS 2" in out
    dtypes = json.loads(out.split("OUTPUT_DTYPES", 1)[1].splitlines()[0])
    assert set(dtypes.values()) == {"float32"}  # logits float32
    assert "CONV1 bfloat16 float32" in out  # bf16 compute, float32 variables
    history = json.loads(out.split("HISTORY", 1)[1])
    assert len(history) == 2 and all(np.isfinite(r["train"]["loss"]) for r in history)
    assert (tmp_path / "m" / "final.keras").exists()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_two_processes(data_dir, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    cfg = _write_config(tmp_path / "w.json", data_dir, tmp_path / "w",
                        strategy="multi_worker", epochs=2, checkpoint_every_steps=4)
    procs = [
        _start(cfg, tmp_path / f"w{i}.npz", env={"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    try:
        outs = [_finish(p, timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all("STEP 12" in out and "REPLICAS 2" in out for out in outs)
    a = h.load_weights_npz(tmp_path / "w0.npz")
    b = h.load_weights_npz(tmp_path / "w1.npz")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # Only the chief wrote the model dir; the worker's temp dirs are gone.
    assert (tmp_path / "w" / "final.keras").exists()
    assert not [d for d in os.listdir(tmp_path / "w" / "checkpoints") if d.startswith(".tmp")]

