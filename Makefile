# make reproduce | make test | make help
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export WANDB_SILENT := true

.PHONY: help env test test-fast reproduce lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned resolve could pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)  ## create .venv from pyproject.toml (torch 2.13.0 CPU)

test: $(STAMP)  ## the full test suite (what CI runs)
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## tests without the slow end-to-end runs
	$(BIN)/pytest -q -m "not slow"

reproduce: $(STAMP)  ## demo personas -> train the reference model -> model dir + card
	$(BIN)/python fetch.py source=demo user=demo_ada-demo_bo-demo_cy
	$(BIN)/python train.py experiment=demo

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests *.py

clean:  ## remove outputs and caches (keeps data/tweets)
	rm -rf outputs multirun data/cache
