# Two commands a user needs: `make demo` and `make test`. Both create .venv
# when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist: one worker per core, a test file's tests on one worker (its
# module fixtures, e.g. the tiny demo run, are built once).
TEST_JOBS ?= auto
XDIST := -n $(TEST_JOBS) --dist loadfile

.PHONY: demo test test-slow bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev,torch,export,video]'
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
