"""The binaries share flag names (allow_override): none may change another's
default, or importing two of them in one process (tests, notebooks) would
silently change a binary's behaviour. Nor its parser: alm-convert's
`--format` was an enum and alm-export's a list, and whichever module a
process imported last decided how both parsed."""

import importlib
import os

import pytest
from absl.testing import flagsaver

from pipelines import _cli
from tests import fresh_python

SCRIPT = """
import importlib, json
from absl import flags
seen = {}
conflicts = []
for name in ["synth", "synth_frames", "convert", "merge", "train", "evaluate", "export",
             "import_torch", "predict", "demo", "index", "search", "archive"]:
    importlib.import_module("pipelines." + name)
    for flag_name in flags.FLAGS:
        flag = flags.FLAGS[flag_name]  # The default and how the value parses.
        default = (repr(flag.default), type(flag).__name__, type(flag.parser).__name__,
                   repr(getattr(flag.parser, "enum_values", None)))
        if flag_name in seen and seen[flag_name] != default:
            conflicts.append((flag_name, seen[flag_name], default, name))
        seen.setdefault(flag_name, default)
print(json.dumps(conflicts))
"""


def test_no_binary_changes_another_binarys_flag_default():
    result = fresh_python.run(["-c", SCRIPT], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_flag_overrides_and_shared_flags_are_defined_once():
    """`allow_override` is spelled only in `_cli.OVERRIDE`; a shared flag's help only in `_shared_flags`."""
    folder = os.path.dirname(importlib.import_module("pipelines").__file__)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and name != "_cli.py":
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = f.read()
            assert "allow_override=" not in text and '"allow_override"' not in text, name
            if name != "_shared_flags.py":
                for help_text in ("Show a progress bar.", "Weights of a model dir.", "Shards per split."):
                    assert help_text not in text, (name, help_text)


def test_every_console_script_module_has_run_and_main():
    for name in ["synth", "synth_frames", "convert", "merge", "train", "evaluate", "export",
                 "import_torch", "predict", "demo", "index", "search", "archive"]:
        module = importlib.import_module("pipelines." + name)
        assert callable(module.run) and callable(module.main), name


def test_bad_flag_is_one_line_and_exit_1(capsys):
    importlib.import_module("pipelines.train")
    with flagsaver.flagsaver(), pytest.raises(SystemExit) as exc:
        _cli.parse_flags("alm-train", ["alm-train", "--strategy=gpu"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alm-train: error:")
    assert "gpu" in err[0]
