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
	$(PY) -m pip install -q --upgrade pip

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
WARM_NO_TF := torch onnx onnxruntime openvino av
WARM_TEST := $(WARM_DEV) tf2onnx tf2onnx.tfonnx ai_edge_litert.interpreter \
	tensorflow.lite.python.lite alm_tf.serving.portable alm_tf.serving.runtimes alm_tf.torch_import
warm = PYTHONDONTWRITEBYTECODE= TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "import importlib; [importlib.import_module(m) for m in '$(1)'.split()]"

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --no-compile -e '.[dev]'
	$(call warm,$(WARM_DEV))
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --no-compile -e '.[dev,torch,export,video]'
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
	$(PY) benchmarks/bench_model.py

clean:
	rm -rf $(VENV) demo_output build *.egg-info .pytest_cache
