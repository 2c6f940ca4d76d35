# `make demo`: set up everything and run refine-taxonomy on the bundled example data.
# `make test`: set up everything and run the test suite (in TEST_WORKERS pytest-xdist processes,
#  one test file per process at a time). Both are idempotent.
# `make test-wheel`: build the wheel, install it in a fresh venv, run refine-taxonomy (~1.5 min;
#  `make test` runs it too, tests/test_wheel.py).
# `make test-current Q2_SOURCES=DIR`: the current-QIIME 2 check (scripts/test-current.sh).
VENV ?= .venv
TEST_WORKERS ?= 2
PY := $(VENV)/bin/python
export CONDA_PREFIX := $(CURDIR)/$(VENV)
export MPLBACKEND := Agg

.PHONY: setup demo test test-wheel test-current clean
setup:
	bash recipes/install-debian.sh

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

test-wheel: setup
	VENV=$(VENV) bash scripts/test-wheel.sh

test-current:
	bash scripts/test-current.sh "$(Q2_SOURCES)"

clean:
	rm -rf demo-output .pytest_cache
