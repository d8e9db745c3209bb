"""--help and --helpfull of every binary: usage and own flags, exit 0 (in-process)."""

import importlib
import re
import sys

import pytest
from absl.testing import flagsaver
from absl import flags

from pipelines import _cli

BINARIES = {"alm-synth": "synth", "alm-convert": "convert", "alm-merge": "merge", "alm-train": "train",
            "alm-evaluate": "evaluate", "alm-export": "export", "alm-import-torch": "import_torch",
            "alm-predict": "predict", "alm-demo": "demo", "alm-archive": "archive"}


def _run(prog, arg, monkeypatch, capsys):
    module = importlib.import_module("pipelines." + BINARIES[prog])
    monkeypatch.setattr(sys, "argv", [prog, arg])
    with pytest.raises(SystemExit) as info:
        _cli.run(prog, module.main)
    return module, info.value.code, capsys.readouterr()


def _listed(text):
    return set(re.findall(r"^  --(?:\[no\])?(\w+):", text, flags=re.M))


@pytest.mark.parametrize("prog", sorted(BINARIES))
def test_help_shows_usage_and_own_flags(prog, monkeypatch, capsys):
    module, code, captured = _run(prog, "--help", monkeypatch, capsys)
    assert code == 0 and not captured.err
    out = captured.out
    assert out.startswith(module.__doc__.strip("\n").splitlines()[0])
    own = {f.name for f in _cli.own_flags(module)}
    assert own and _listed(out) == own
    # Only flags that pipelines define: no absl logging / absl.testing / TensorFlow flags.
    defined_here = {f.name for name, fl in flags.FLAGS.flags_by_module_dict().items()
                    if name.startswith("pipelines.") for f in fl}
    assert _listed(out) <= defined_here
    for foreign in ("verbosity", "logtostderr", "test_srcdir", "test_tmpdir", "flagfile"):
        assert f"--{foreign}:" not in out


def test_help_of_model_binaries_lists_the_shared_model_flags(monkeypatch, capsys):
    for prog in ("alm-train", "alm-import-torch", "alm-demo"):
        _, code, captured = _run(prog, "--help", monkeypatch, capsys)
        assert code == 0
        assert {"backbone", "image_height", "alm_levels", "fusion"} <= _listed(captured.out), prog
    _, _, captured = _run("alm-train", "-h", monkeypatch, capsys)
    assert {"learning_rate", "allow_corrupt_records", "allow_changed_settings"} <= _listed(captured.out)


def test_helpfull_exits_0_with_own_flags_first(monkeypatch, capsys):
    _, code, captured = _run("alm-evaluate", "--helpfull", monkeypatch, capsys)
    assert code == 0
    own, _, rest = captured.out.partition("All flags")
    assert {"data_dir", "overwrite", "allow_corrupt_records"} <= _listed(own)
    assert "--verbosity" in rest  # everything else comes after


def test_a_stray_argument_is_one_line_and_exit_1(capsys):
    importlib.import_module("pipelines.evaluate")
    with flagsaver.flagsaver(), pytest.raises(SystemExit) as info:
        _cli.parse_flags("alm-evaluate", ["alm-evaluate", "--split=test", "stray.keras"])
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "alm-evaluate: error: unexpected arguments: stray.keras"
