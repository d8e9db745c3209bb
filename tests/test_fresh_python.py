"""The processes fresh_python.py forks behave like a new `python` for what
the tests that use them rely on."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests import fresh_python

PROBE = r"""
import json, os, sys
from tensorflow.python.eager import context
print(json.dumps({
    "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(), "env": os.environ.get("PROBE"),
    "pythonpath_entry": sys.path[1], "tests_on_path": any(p.endswith("tests") for p in sys.path),
    "project_modules": sorted(m for m in sys.modules
                              if m.split(".")[0] in ("alm_tf", "pipelines", "pytest", "conftest")),
    "tensorflow_context": context.context_safe() is not None,
}))
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def test_a_child_is_a_new_interpreter_with_what_it_was_given(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PROBE="yes", PYTHONPATH=str(tmp_path / "extra"))
    result = fresh_python.run(["-c", PROBE, "a", "b"], env=env, cwd=str(tmp_path), timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "to stderr"
    seen = json.loads(result.stdout)
    assert seen == {"argv": ["-c", "a", "b"], "path0": "", "cwd": str(tmp_path), "env": "yes",
                    "pythonpath_entry": str(tmp_path / "extra"), "tests_on_path": False,
                    "project_modules": [], "tensorflow_context": False}
    assert "PROBE" not in os.environ and os.getcwd() != str(tmp_path)  # this process untouched


def test_scripts_modules_errors_and_signals(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:], sys.path[0])\nraise ValueError('boom')\n")
    result = fresh_python.run([str(script), "x"], timeout=120)
    assert result.returncode == 1
    assert result.stdout.strip() == f"['x'] {tmp_path}"
    assert result.stderr.strip().splitlines()[-1] == "ValueError: boom"
    assert fresh_python.run(["-m", "json.tool", "--help"], timeout=120).returncode == 0
    assert fresh_python.run(["-c", "raise SystemExit('bye')"], timeout=120).stderr.strip() == "bye"
    victim = fresh_python.start(["-c", "import time; print('up', flush=True); time.sleep(60)"])
    with pytest.raises(Exception, match="timed out"):
        victim.wait(timeout=0.5)
    victim.send_signal(signal.SIGKILL)
    out, _ = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL and out == "up\n"
    assert sys.executable in fresh_python.run(["-c", "pass"]).args


def test_a_variable_read_at_import_gets_a_new_interpreter():
    for name in fresh_python.IMPORT_TIME:
        value = "0" if os.environ.get(name) != "0" else "1"
        process = fresh_python.start(["-c", "import os; print(os.environ[%r])" % name],
                                     env=dict(os.environ, **{name: value}))
        assert isinstance(process, subprocess.Popen), name
        assert process.communicate(timeout=60)[0].strip() == value
