# Two set-up commands that work on a fresh machine with Python >= 3.10 and pip:
#   make demo   run the whole toolkit on the embedded simulated study
#   make test   run the test suite (real data from $EEGCRP_DATA, default ../shared/data)
# Both create .venv when missing and install from the one constraints file.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
export EEGCRP_DATA ?= ../shared/data

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# zennit declares torchvision (never imported by 0.4.6), whose torch-2.13 builds need CUDA:
# install it without dependencies.
$(VENV)/.base: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e .
	$(PIP) install --quiet --no-deps -c constraints.txt zennit
	touch $@

# zennit-crp (the reference CRP implementation the tests compare against) declares
# torchvision too, which its attribution and concepts modules never import: --no-deps.
$(VENV)/.test: $(VENV)/.base
	$(PIP) install --quiet -c constraints.txt -e '.[test,moabb]'
	$(PIP) install --quiet --no-deps -c constraints.txt zennit-crp
	touch $@

demo: $(VENV)/.base
	$(BIN)/eegcrp demo

test: $(VENV)/.test
	$(BIN)/python -m pytest

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) results .pytest_cache
