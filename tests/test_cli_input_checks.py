"""Small input checks shared by the binaries: finite float flags, threshold
messages, usage text kept as written."""

from __future__ import annotations

import contextlib
import importlib
import io
import re

import pytest
from absl import flags
from absl.testing import flagsaver

from alm_tf import groups
from pipelines import _cli, synth

BINARIES = {"alm-synth": "synth", "alm-synth-frames": "synth_frames", "alm-convert": "convert",
            "alm-merge": "merge", "alm-train": "train", "alm-evaluate": "evaluate",
            "alm-export": "export", "alm-import-torch": "import_torch", "alm-predict": "predict",
            "alm-demo": "demo", "alm-archive": "archive"}


def _float_flags():
    found = []
    for prog, name in sorted(BINARIES.items()):
        module = importlib.import_module("pipelines." + name)
        found += [(prog, flag.name) for flag in _cli.own_flags(module)
                  if isinstance(flag.parser, flags.FloatParser)]
    return found


FLOAT_FLAGS = _float_flags()


def test_every_float_flag_is_found():
    names = {name for _, name in FLOAT_FLAGS}
    assert {"min_score", "smoothing", "learning_rate", "weight_decay",
            "baseline_learning_rate"} <= names, names


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("prog, name", FLOAT_FLAGS)
def test_float_flags_refuse_nan_and_inf(prog, name, value):
    err = io.StringIO()
    with flagsaver.flagsaver(), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        flags.FLAGS.unparse_flags()
        _cli.parse_flags(prog, [prog, f"--{name}={value}"])
    lines = err.getvalue().strip().splitlines()
    assert info.value.code == 1 and len(lines) == 1, err.getvalue()
    assert lines[0].startswith(f"{prog}: error:") and f"--{name} must be a finite number" in lines[0]


def test_float_flags_take_finite_values():
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        _cli.parse_flags("alm-predict", ["alm-predict", "--min_score=0.25", "--smoothing=0.5"])
        assert flags.FLAGS.min_score == 0.25 and flags.FLAGS.smoothing == 0.5


@pytest.mark.parametrize("text, needle", [
    (["1.5"], "threshold for every attribute must lie in [0, 1]. Received: 1.5"),
    (["nan"], "threshold for every attribute must lie in [0, 1]. Received: nan"),
    (["0.5", "2", "0.5"], "threshold of 'b' must lie in [0, 1]. Received: 2.0"),
    (["b=-1"], "threshold of 'b' must lie in [0, 1]. Received: -1.0"),
])
def test_threshold_messages_name_the_value(text, needle):
    with pytest.raises(groups.GroupsError) as info:
        groups.request_thresholds(groups.parse_threshold_values(text), ["a", "b", "c"])
    assert str(info.value) == needle


@pytest.mark.parametrize("prog", sorted(BINARIES))
def test_usage_keeps_its_line_breaks(prog):
    """A usage line continued with a backslash stays two lines in --help."""
    module = importlib.import_module("pipelines." + BINARIES[prog])
    doc = module.__doc__
    assert not re.search(r"\S {3,}--", doc), doc
    assert "\\\n" in doc or "\\" not in doc


def test_synth_usage_shows_the_convert_command_on_two_lines():
    assert ("alm-convert --format=csv --annotations=D/annotations.csv --images_dir=D \\\n"
            "      --output_dir=records") in _cli.help_text("alm-synth", synth)
