r"""alm-merge: several converted data sets into one, through an attribute mapping.

  alm-merge --inputs=pa100k=records/pa100k,rap=records/rap,peta=records/peta \
      --mapping=to_pa100k --output_dir=records/merged \
      --splits=trainval=train+val+trainval,test

--inputs: NAME=DIR (or DIR: the name is the manifest's dataset); NAME picks
the mapping's section and is written to each record as `image/source`.
--mapping: a JSON mapping file, or a shipped one by name (`to_pa100k`:
PA-100K, RAP v1 / v2, PETA onto PA-100K's 26 attributes). Images are
copied as encoded, not re-encoded; attributes a source does not label are
unknown (-1): no loss, not counted by the metrics. See alm_tf/data/README.md.
An image that two inputs both hold (the same bytes: a copy of one data
set in another folder) is refused naming the first pair;
--allow_duplicates keeps such images.
A non-empty --output_dir is refused unless --overwrite, which replaces it
whole; the merge is written beside it and swapped in at the end
(`alm_tf.outputs`).
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import flags

from alm_tf import outputs
from alm_tf.data.convert import format_summary
from alm_tf.data.convert_config import parse_splits
from alm_tf.data.manifest import MANIFEST, SOURCES_KEY
from alm_tf.data.merge import MergeConfig, merge, parse_inputs
from pipelines import _cli, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_INPUTS = flags.DEFINE_list(
    "inputs", [], "Converted data sets: NAME=DIR or DIR (name from its manifest), comma-separated.", **_OVERRIDE
)
_MAPPING = flags.DEFINE_string(
    "mapping", None, "Mapping file (JSON) or the name of a shipped mapping, e.g. to_pa100k.", **_OVERRIDE
)
_OUTPUT_DIR, _NUM_SHARDS, _EXAMPLES_PER_SHARD = _shared_flags.records_output()
_SPLITS = flags.DEFINE_list(
    "splits", [],
    "Output splits: NAME (that split of every input having it) or NAME=A+B (splits A and B "
    "of every input having them), e.g. trainval=train+val+trainval,test. Empty: every split name.",
    **_OVERRIDE,
)
_PROGRESS = _shared_flags.progress()
_ALLOW_DUPLICATES = flags.DEFINE_bool(
    "allow_duplicates", False, "Keep images that two inputs both hold (the same bytes); by default "
    "the first such pair is refused: a copy of one data set would count twice.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-merge", message)


def _config():
    """The validated MergeConfig for the flags (raises ValueError)."""

    for name, flag in (("inputs", _INPUTS), ("mapping", _MAPPING), ("output_dir", _OUTPUT_DIR)):
        if not flag.value:
            raise ValueError(f"--{name} is required")
    return MergeConfig(
        inputs=parse_inputs(_INPUTS.value),
        mapping=_MAPPING.value,
        output_dir=_OUTPUT_DIR.value,
        splits=parse_splits(_SPLITS.value),
        num_shards=_NUM_SHARDS.value,
        examples_per_shard=_EXAMPLES_PER_SHARD.value,
        show_progress=_PROGRESS.value,
        allow_duplicates=_ALLOW_DUPLICATES.value,
    )


def main(argv: list[str]) -> None:
    """Merges; exits 1 with one line on stderr on bad flags or input."""
    try:
        cfg = _config()
        inputs = [d for _, d in cfg.inputs] + ([cfg.mapping] if os.path.exists(cfg.mapping) else [])
        with outputs.replaced_dir(cfg.output_dir, overwrite=_OVERWRITE.value, inputs=inputs) as staging:
            result = merge(cfg, write_to=staging)
    except (ValueError, OSError) as e:  # MergeError, MappingError, OutputError are ValueErrors.
        _fail(_cli.first_line(e))
        return
    except tf.errors.OpError as e:  # a shard write that failed, e.g. on a full disk
        _fail(f"cannot write {cfg.output_dir!r}: {_cli.first_line(e)}")
        return
    print(format_summary(result.manifest))
    for source in result.manifest[SOURCES_KEY]:
        print(f"{source['name']}: labels {len(source['known_attributes'])} of "
              f"{result.manifest['num_attributes']} attributes")
    print(f"wrote {result.num_written} examples: {os.path.join(cfg.output_dir, MANIFEST)}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-merge", main)


if __name__ == "__main__":
    run()
