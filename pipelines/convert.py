r"""alm-convert: raw pedestrian-attribute annotations to sharded TFRecords.

  alm-convert --format=pa100k --annotations=annotation.mat \
      --images_dir=PA-100K/data --output_dir=records/pa100k \
      --splits=trainval=train+val,test
  alm-convert --format=alm_list --schema=peta \
      --annotations=trainval=peta_train.txt,test=peta_test.txt \
      --images_dir=. --output_dir=records/peta
  alm-convert --format=rap --annotations=RAP_annotation.mat --images_dir=RAP_dataset \
      --output_dir=records/rap_all --attribute_set=all

Writes `<split>-00000-of-000NN.tfrecord` shards and `manifest.json`.
With --engine=beam the conversion runs as an Apache Beam pipeline (the
`beam` extra; the same shards and manifest), Beam's options after `--`:
  alm-convert --format=csv ... --engine=beam -- --runner=DirectRunner \
      --direct_num_workers=2 --direct_running_mode=multi_processing
A non-empty --output_dir is refused unless --overwrite, which replaces it
whole; everything is written beside it first and swapped in at the end, so
a failure (a full disk included) leaves an earlier conversion as it was;
an --output_dir inside --images_dir (or holding an input) is refused
(`alm_tf.outputs`).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
from absl import flags

from alm_tf import outputs
from alm_tf.data.convert import convert, format_summary
from alm_tf.data.convert_config import ConvertConfig, parse_list_annotations, parse_splits
from alm_tf.data.labels import DEFAULT_UNCERTAIN, UNCERTAIN_POLICIES
from alm_tf.data.manifest import MANIFEST
from alm_tf.data.readers import FORMATS
from alm_tf.data.schemas import SCHEMAS
from pipelines import _cli, _image_flags, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

# A string, not an enum: alm-export's --format (a list) shares the name, and
# a process importing both keeps one parser (tests/test_cli_flags.py).
_FORMAT = flags.DEFINE_string("format", None, f"Annotation layout: {', '.join(FORMATS)}.", **_OVERRIDE)
_ANNOTATIONS = flags.DEFINE_string(
    "annotations", None,
    "Annotation file (PETA: PETA.mat or the 'PETA dataset' folder). For alm_list: "
    "comma-separated SPLIT=PATH entries, e.g. trainval=train.txt,test=test.txt.",
    **_OVERRIDE,
)
_IMAGES_DIR = flags.DEFINE_string("images_dir", None, "Folder the image paths are relative to.", **_OVERRIDE)
_SCHEMA = flags.DEFINE_enum(
    "schema", None, list(SCHEMAS), "Attribute schema of an alm_list.", **_OVERRIDE
)
_SPLITS = flags.DEFINE_list(
    "splits", [],
    "Output splits: NAME (a source split) or NAME=A+B (merge source splits), e.g. "
    "trainval=train+val,test. Empty: every source split as it is.",
    **_OVERRIDE,
)
_PARTITION = flags.DEFINE_integer(
    "partition", 0, "Split number 0-4 (rap, rapv2, PETA.mat).", lower_bound=0, upper_bound=4, **_OVERRIDE
)
_OUTPUT_DIR, _NUM_SHARDS, _EXAMPLES_PER_SHARD = _shared_flags.records_output()
_STRICT = flags.DEFINE_bool("strict", False, "Fail, writing nothing, if any row is bad.", **_OVERRIDE)
_WORKERS = flags.DEFINE_integer(
    "workers", os.cpu_count() or 1, "Image-decoding processes.", lower_bound=0, **_OVERRIDE
)
#: --attribute_set's choices: the paper's evaluated attributes, or every
#: column of the source (RAP's and PETA's clothing colours among them).
ATTRIBUTE_SETS = ("paper", "all")
_ATTRIBUTE_SET = flags.DEFINE_enum(
    "attribute_set", ATTRIBUTE_SETS[0], ATTRIBUTE_SETS,
    "Which attributes to keep: 'paper', the evaluated lists of the paper; 'all', every attribute "
    "of the source after them (RAP's and PETA's upper- and lower-body colours, which become the "
    "upper_color and lower_color answers; see alm_tf/data/README.md).", **_OVERRIDE
)
_ALL_ATTRIBUTES = flags.DEFINE_bool(
    "all_attributes", False, "Alias of --attribute_set=all.", **_OVERRIDE
)
_UNCERTAIN = flags.DEFINE_enum(
    "uncertain", DEFAULT_UNCERTAIN, UNCERTAIN_POLICIES,
    "RAP's value 2 (uncertain; formats rap, rapv2, and alm_list with --schema=rap): "
    "'ignore' makes it an unknown label (-1; no loss, not counted by the metrics, "
    "as the official evaluation); 'zero' counts it as negative (what the paper's "
    "training lists hold); 'skip' skips such rows as out-of-set labels.",
    **_OVERRIDE,
)
_PROGRESS = _shared_flags.progress()
_ENGINE = flags.DEFINE_enum("engine", "local", ["local", "beam"], "local: a process pool here; beam: an "
                            "Apache Beam pipeline (its options after --).", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-convert", message)


def _config():
    """The validated ConvertConfig for the flags (raises ValueError)."""

    for name, flag in (("format", _FORMAT), ("annotations", _ANNOTATIONS),
                       ("images_dir", _IMAGES_DIR), ("output_dir", _OUTPUT_DIR)):
        if not flag.value:
            raise ValueError(f"--{name} is required")
    if _ALL_ATTRIBUTES.value and flags.FLAGS["attribute_set"].present and _ATTRIBUTE_SET.value != "all":
        raise ValueError(f"--all_attributes contradicts --attribute_set={_ATTRIBUTE_SET.value}")
    if _FORMAT.value not in FORMATS:
        raise ValueError(f"--format={_FORMAT.value} is not one of {', '.join(FORMATS)}")
    if _FORMAT.value == "alm_list":
        if _SCHEMA.value is None:
            raise ValueError("--schema (pa100k, rap or peta) is required with --format=alm_list")
        annotations = parse_list_annotations(_ANNOTATIONS.value.split(","))
    else:
        if _SCHEMA.value is not None:
            raise ValueError(f"--schema applies to --format=alm_list only; got --format={_FORMAT.value}")
        annotations = _ANNOTATIONS.value
        if not os.path.exists(annotations):
            raise ValueError(f"--annotations not found: {annotations!r}")
    return ConvertConfig(
        format=_FORMAT.value,
        annotations=annotations,
        images_dir=_IMAGES_DIR.value,
        output_dir=_OUTPUT_DIR.value,
        schema=_SCHEMA.value,
        splits=parse_splits(_SPLITS.value),
        partition=_PARTITION.value,
        num_shards=_NUM_SHARDS.value,
        examples_per_shard=_EXAMPLES_PER_SHARD.value,
        strict=_STRICT.value,
        workers=_WORKERS.value,
        all_attributes=_ALL_ATTRIBUTES.value or _ATTRIBUTE_SET.value == "all",
        uncertain=_UNCERTAIN.value,
        show_progress=_PROGRESS.value,
        max_image_pixels=_image_flags.MAX_IMAGE_PIXELS.value,
    )


def _convert(cfg: ConvertConfig, beam_args: list[str]):
    if _ENGINE.value == "beam":
        from alm_tf.beam import convert as beam_convert
        from alm_tf.beam import options as beam_options

        beam_options.quiet_logs()
        return beam_convert.convert(cfg, beam_args)
    if beam_args:
        raise ValueError(f"arguments after -- are Beam's options, for --engine=beam only: {' '.join(beam_args)}")
    return convert(cfg)


def main(argv: list[str]) -> None:
    """Converts; exits 1 with one line on stderr on bad flags or input."""
    try:
        cfg = _config()
        inputs = [cfg.images_dir] + ([p for _, p in cfg.annotations] if cfg.format == "alm_list"
                                     else [cfg.annotations])
        with outputs.replaced_dir(cfg.output_dir, overwrite=_OVERWRITE.value, inputs=inputs) as staging:
            result = _convert(dataclasses.replace(cfg, output_dir=staging), argv[1:])
    except (ValueError, OSError) as e:  # DataFormatError, StrictError, OutputError are ValueErrors.
        _fail(_cli.first_line(e))
        return
    except tf.errors.OpError as e:  # a shard write that failed, e.g. on a full disk
        _fail(f"cannot write {cfg.output_dir!r}: {_cli.first_line(e)}")
        return
    print(format_summary(result.manifest))
    print(f"wrote {result.num_written} examples, skipped {result.num_skipped} rows: "
          f"{os.path.join(cfg.output_dir, MANIFEST)}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-convert", main, after_dashes=True)


if __name__ == "__main__":
    run()
