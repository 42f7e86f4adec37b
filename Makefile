# stockledger: `make demo` runs the example month, `make test` runs the test suite.
# Both create .venv and install the project with its dev extras on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python examples/demo.py

test: install
	$(BIN)/pytest -n 2 --dist loadgroup

test-fast: install
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow"

bench: install
	$(BIN)/stockledger bench post --events 100000
	$(BIN)/stockledger bench backdate --history 10000

clean:
	rm -rf $(VENV) stockledger.db stockledger.db-wal stockledger.db-shm .pytest_cache
