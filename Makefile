# Set-up and entry points of condnas. Every target sets up the virtualenv first (idempotent).
VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
JOBS      ?= 2
STAMP     := $(VENV)/.condnas-installed

.PHONY: setup quick test test-fast report clean

setup: $(STAMP)

# torch first, from the local CPU build (a bare `torch` requirement would pull a CUDA build);
# xautodl without its dependencies (its metadata pins numpy<=1.19.5, which modern numpy breaks).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-deps xautodl==1.0.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

quick: setup
	$(BIN)/condnas run quick --jobs $(JOBS)
	$(BIN)/condnas report results/quick

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) results/.cache
