"""alm-export: SavedModel for TF Serving at E/<version>/.

  alm-export --model_dir=runs/pa100k --export_dir=exported/alm [--version=N]
      [--which=final|best] [--overwrite]
  alm-export --model=imported/alm_pa100k.keras --export_dir=exported/alm

--model_dir: a trainer model dir; the model is rebuilt from config.json,
the weights of final.keras (or best.keras with --which=best) loaded, and
thresholds.json (alm-evaluate --tune_thresholds) shipped when present.
--model: a .keras file whose attribute names come from the sidecar
<stem>.attributes.txt (what alm-import-torch writes) or from a config.json
beside it. --version defaults to one more than the highest existing
version (1 for an empty E); an existing version is only replaced with
--overwrite. Signatures, outputs and layout: alm_tf/serving/export.py and
savedmodel/README.md.
"""

from __future__ import annotations

import os

from absl import flags

from alm_tf import artifacts
from alm_tf.serving import export
from pipelines import _cli

# Other binaries define some of the same names; allow_override lets several
# of them share one process (tests, the demo).
_OVERRIDE = {"allow_override": True}

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Trainer model dir (config.json + final/best.keras).", **_OVERRIDE)
_MODEL = flags.DEFINE_string("model", None, "A .keras file (attribute names from <stem>.attributes.txt "
                             "or a config.json beside it); instead of --model_dir.", **_OVERRIDE)
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Base dir; the SavedModel goes to <export_dir>/<version>/.", **_OVERRIDE)
_VERSION = flags.DEFINE_integer("version", None, "Version number (default: highest existing + 1).", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version.", **_OVERRIDE)
_WHICH = flags.DEFINE_enum("which", artifacts.WEIGHTS[0], artifacts.WEIGHTS, "Weights of a model dir.",
                           **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-export", message)


def _check_flags() -> str:
    """Validates the flags; returns the model path."""
    if bool(_MODEL_DIR.value) == bool(_MODEL.value):
        raise ValueError("give exactly one of --model_dir and --model")
    if not _EXPORT_DIR.value:
        raise ValueError("--export_dir is required")
    if _VERSION.value is not None and _VERSION.value < 1:
        raise ValueError(f"--version must be >= 1. Received: {_VERSION.value}")
    if _MODEL_DIR.value:
        if not artifacts.is_model_dir(_MODEL_DIR.value):
            raise ValueError(f"--model_dir has no {artifacts.CONFIG_NAME}: {_MODEL_DIR.value!r}")
        return _MODEL_DIR.value
    if not _MODEL.value.endswith(".keras"):
        raise ValueError(f"--model must be a .keras file: {_MODEL.value!r}")
    if not os.path.isfile(_MODEL.value):
        raise ValueError(f"--model not found: {_MODEL.value!r}")
    return _MODEL.value


def main(argv: list[str]) -> None:
    """Exports; exits 1 with one line on stderr on bad flags or input."""
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        path = _check_flags()
        version = _VERSION.value
        if version is not None and not _OVERWRITE.value and os.path.exists(
                os.path.join(_EXPORT_DIR.value, str(version))):
            raise ValueError(f"version {version} already exists in {_EXPORT_DIR.value!r} "
                             f"(use --overwrite)")
        source = export.load_source(path, _WHICH.value)
        out = export.export_saved_model(source, _EXPORT_DIR.value, version, _OVERWRITE.value)
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    print(f"exported {source.origin} to {out}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-export", main)


if __name__ == "__main__":
    run()
