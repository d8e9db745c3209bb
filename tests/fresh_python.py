"""Fresh Python processes for tests, without paying TensorFlow's import each time.

A test that needs a process of its own (a run to SIGKILL, two multi-worker
trainers, a check that nothing this process imported or registered helps)
used to start `python`, which spends about 4.5 s of CPU importing
TensorFlow before its first line. Here such processes are forked from a
multiprocessing forkserver (one per pytest worker, started at first use)
that has imported TensorFlow and nothing of this project: no alm_tf, no
test module, no absl flag defined or parsed, no TensorFlow context or thread
pool (they start lazily, after the fork). The child gets the arguments,
environment and working directory it is given, `sys.path` as a new
`python` would have it, its stdout and stderr in files, atexit handlers at
the end, and an exit status like a process's (negative when a signal ended
it).

What a new interpreter decides before `import tensorflow` ends cannot be
forked in: a child whose environment changes one of `IMPORT_TIME` (read by
TensorFlow at import, or by Python at start) is a new interpreter
instead, through `subprocess`.
"""

import atexit
import contextlib
import json
import multiprocessing
import multiprocessing.spawn
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback
import weakref

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["tensorflow"])
_BASE_PATH = None
IMPORT_TIME = ("TF_ENABLE_ONEDNN_OPTS", "PYTHONHASHSEED")


def _base_path():
    """sys.path of a new `python -c` without PYTHONPATH, after its first entry."""
    global _BASE_PATH
    if _BASE_PATH is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                             env=env, capture_output=True, text=True, check=True)
        _BASE_PATH = json.loads(out.stdout)
    return _BASE_PATH


@contextlib.contextmanager
def _without_the_main_module():
    """multiprocessing would run the parent's __main__ (pytest's, or a
    script's) in the child: a new `python` runs only what it is given."""
    original = multiprocessing.spawn.get_preparation_data

    def preparation_data(name):
        data = original(name)
        for key in ("init_main_from_name", "init_main_from_path"):
            data.pop(key, None)
        return data

    multiprocessing.spawn.get_preparation_data = preparation_data
    try:
        yield
    finally:
        multiprocessing.spawn.get_preparation_data = original


def _child(args, env, cwd, out_path, err_path, base_path):
    """Runs in the forked process: becomes `python *args` and exits like it."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out_path), (2, err_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    code = 0
    try:
        if args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            sys.path[:] = ["", *extra, *base_path]
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        elif args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[:] = [os.getcwd(), *extra, *base_path]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            sys.path[:] = [os.path.dirname(os.path.abspath(args[0])), *extra, *base_path]
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:  # Printed like the interpreter would, exit status 1.

        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)  # multiprocessing's bootstrap turns this into the exit status.


class FreshProcess:
    """A started child with the part of `subprocess.Popen` the tests use."""

    def __init__(self, args, env=None, cwd=None):
        self._dir = tempfile.mkdtemp(prefix="fresh_python_")
        weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._out = os.path.join(self._dir, "stdout")
        self._err = os.path.join(self._dir, "stderr")
        env = dict(os.environ if env is None else env)
        self.args = list(args)
        self._process = _CONTEXT.Process(
            target=_child, args=(self.args, env, os.path.abspath(cwd or os.getcwd()),
                                 self._out, self._err, _base_path()))
        with _without_the_main_module():
            self._process.start()
        self.pid = self._process.pid
        self.returncode = None

    def poll(self):
        self.returncode = self._process.exitcode
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self):
        self._process.kill()

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout=None):
        """Waits, then returns (stdout, stderr) as text."""
        self.wait(timeout)
        with open(self._out, errors="replace") as out, open(self._err, errors="replace") as err:
            return out.read(), err.read()


def start(args, env=None, cwd=None):
    """Like `subprocess.Popen([sys.executable, *args], env=env, cwd=cwd,
    stdout=PIPE, stderr=PIPE, text=True)`, which it is when `env` changes
    a variable of `IMPORT_TIME`."""
    if env is not None and any(env.get(k) != os.environ.get(k) for k in IMPORT_TIME):
        return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    return FreshProcess(args, env=env, cwd=cwd)


def run(args, env=None, cwd=None, timeout=None):
    """Like `subprocess.run([sys.executable, *args], env=env, cwd=cwd,
    capture_output=True, text=True, timeout=timeout)`."""
    process = start(args, env=env, cwd=cwd)
    try:
        out, err = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess([sys.executable, *args], process.returncode, out, err)
