"""Flags that several binaries define alike: each name, default and help once.

Each function defines its flags (with `_cli.OVERRIDE`, as every flag) and
returns their holders. A binary keeps them as module-level names
(`_PROGRESS = _shared_flags.progress()`), which is also what its `--help`
lists (`_cli.own_flags`).
"""

from __future__ import annotations

from absl import flags

from alm_tf import artifacts
from alm_tf.data.manifest import MANIFEST
from alm_tf.data.writing import DEFAULT_EXAMPLES_PER_SHARD, MAX_SHARDS
from pipelines._cli import OVERRIDE

#: Most shards a split may have (shard names carry five digits).


def progress(default: bool = True) -> flags.FlagHolder:
    """`--progress`: show a progress bar."""
    return flags.DEFINE_bool("progress", default, "Show a progress bar.", **OVERRIDE)


def data_dir() -> flags.FlagHolder:
    """`--data_dir`: converted data, as alm-convert and alm-merge write it."""
    return flags.DEFINE_string("data_dir", None, f"Converted data ({MANIFEST} + shards).", **OVERRIDE)


def which() -> flags.FlagHolder:
    """`--which`: the weights of a model dir (`alm_tf.artifacts.WEIGHTS`)."""
    return flags.DEFINE_enum("which", artifacts.WEIGHTS[0], artifacts.WEIGHTS, "Weights of a model dir.",
                             **OVERRIDE)


def records_output() -> tuple[flags.FlagHolder, flags.FlagHolder, flags.FlagHolder]:
    """`--output_dir`, `--num_shards`, `--examples_per_shard` of a binary that writes records."""
    output_dir = flags.DEFINE_string("output_dir", None, f"Where the shards and {MANIFEST} go.", **OVERRIDE)
    num_shards = flags.DEFINE_integer("num_shards", None, "Shards per split.", lower_bound=1,
                                      upper_bound=MAX_SHARDS, **OVERRIDE)
    examples_per_shard = flags.DEFINE_integer(
        "examples_per_shard", None,
        f"Examples per shard (default {DEFAULT_EXAMPLES_PER_SHARD} when --num_shards is not set).",
        lower_bound=1, **OVERRIDE)
    return output_dir, num_shards, examples_per_shard


def synthetic_output() -> tuple[flags.FlagHolder, flags.FlagHolder]:
    """`--output_dir` and `--seed` of a binary that draws synthetic data."""
    output_dir = flags.DEFINE_string("output_dir", None, "Output folder.", **OVERRIDE)
    seed = flags.DEFINE_integer("seed", 0, "Random seed (same seed, same bytes).", lower_bound=0, **OVERRIDE)
    return output_dir, seed
