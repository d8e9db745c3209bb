# Two commands a user needs: `make demo` and `make test`. Both create .venv
# when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist: one worker per core, a test file's tests on one worker (its
# module fixtures, e.g. the tiny demo run, are built once), the longest
# files first (tests/conftest.py, LONGEST_FILES_FIRST).
TEST_JOBS ?= auto
XDIST := -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-slow bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'uv>=0.9,<1' || echo "uv not installed: pip will install the project"

# uv installs the same releases as pip, unpacking wheels in parallel: the
# test extras in 15 s instead of 35 s on 2 cores (BUILD_NOTES.md, "Suite
# time"). It does not read pip's configuration, so the local wheel folders
# pip is told about (PIP_FIND_LINKS or pip.conf's find-links: where this
# machine keeps torch's CPU wheel) are passed on. pip is the fallback
# wherever uv is missing or fails. Neither byte-compiles (see below).
# The demo's footage stage decodes and detects people (the video extra).
DEV_SPEC := -e '.[dev,video]'
TEST_SPEC := -e '.[dev,torch,export,video,search,beam]'
install = if [ -x $(VENV)/bin/uv ] && $(VENV)/bin/uv pip install -q --python $(PY) \
	$$(for l in $${PIP_FIND_LINKS:-$$($(PY) -m pip config get global.find-links 2>/dev/null)}; \
	do printf -- '--find-links %s ' "$$l"; done) $(1); \
	then :; else $(PY) -m pip install -q --no-compile $(1); fi

# --no-compile: pip would byte-compile all 13,800 .py files of the 3.7 GB of
# wheels (about 40 s of the install on 2 cores); importing what the binaries
# and the tests use compiles the ~3,000 they need in about 13 s. The empty
# PYTHONDONTWRITEBYTECODE lets that one import write its .pyc files even
# where the variable is set (reading them is allowed either way).
# The test extras' imports: those without TensorFlow (WARM_NO_TF) run in a
# second process beside the TensorFlow ones (two cores: 18-20 s instead of
# 22-25 s for the warm-up imports, measured twice each).
WARM_DEV := tensorflow keras alm_tf alm_tf.training alm_tf.serving.export pipelines.demo \
	pipelines.train pipelines.evaluate pipelines.export pipelines.predict pytest xdist
# Beam's worker modules too: every Beam worker process imports them anew (2.2 s from
# source, 0.7 s from bytecode).
WARM_NO_TF := torch onnx onnxruntime openvino av apache_beam apache_beam.runners.worker.sdk_worker_main \
	apache_beam.runners.portability.fn_api_runner.fn_runner apache_beam.ml.inference.base
WARM_TEST := $(WARM_DEV) tf2onnx tf2onnx.tfonnx ai_edge_litert.interpreter \
	tensorflow.lite.python.lite alm_tf.serving.portable alm_tf.artifacts.runtimes alm_tf.torch_import
warm = PYTHONDONTWRITEBYTECODE= TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "import importlib; [importlib.import_module(m) for m in '$(1)'.split()]"

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(call install,$(DEV_SPEC))
	$(call warm,$(WARM_DEV))
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(call install,$(TEST_SPEC))
	$(call warm,$(WARM_NO_TF)) & pid=$$!; status=0; $(call warm,$(WARM_TEST)) || status=$$?; \
	wait $$pid || status=$$?; exit $$status
	touch $@ $(VENV)/.installed-dev

demo: $(VENV)/.installed-dev
	$(VENV)/bin/alm-demo $(DEMO_ARGS)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-slow: $(VENV)/.installed-test
	$(PY) -m pytest -q -m slow $(XDIST) $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks.bench_model

clean:
	rm -rf $(VENV) demo_output build *.egg-info .pytest_cache
