# Two commands for a newcomer:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench data docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build of torch first: an uncapped torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.*"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rfprior demo

# two pytest-xdist workers, one thread each (tests/conftest.py); with worksteal a worker that runs out
# of tests takes some of the other's, so both stay busy to the end
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist worksteal

test: $(STAMP)
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(PYTEST)

# the same without the tests marked slow (subprocesses, Dask clusters, examples, the wheel build)
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.operators

data: $(STAMP)
	$(BIN)/python data/make_data.py

# docs/validation.md from the benchmark summaries, then the API reference from the docstrings
# (docs/api -> docs/_build/html): nitpicky, every warning fails; -E rereads everything, so a warning
# is reported again on every run, not only when its file changed
docs: $(STAMP)
	$(BIN)/python -m benchmarks.make_validation
	$(BIN)/python -m sphinx -W --keep-going -n -E -b html docs/api docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
