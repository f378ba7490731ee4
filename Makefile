# Two commands for a fresh clone: `make book` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The book's npm packages (package.json: KaTeX, which typesets the formulas at build time).
NODE_STAMP := node_modules/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Two workers, one notebook each at a time (--dist loadfile keeps a notebook's cells together).
XDIST ?= -n 2 --dist loadfile
# The numerics policy (optim_lessons/numerics.py: pinned CPU code paths, one thread) is applied by
# conftest.py for every pytest run, and by `python -m optim_lessons.numerics` for `make execute`,
# so stored outputs are written and checked under the same settings.

.PHONY: help setup data book test test-fast test-compat test-colab execute lint clean

help:
	@echo "make book     set up, then build the site into _build/html (from stored outputs)"
	@echo "make test     set up, then run the unit tests and every notebook (pytest --nbval)"
	@echo "make execute  re-run every notebook in place to refresh its stored outputs"
	@echo "make test-fast  the library's unit tests only (no notebooks, no browser)"
	@echo "make test-compat  every notebook and the unit tests on the oldest torch declared (slow)"
	@echo "make test-colab   every notebook in a stand-in Colab runtime, installed by its install cell"
	@echo "make lint     ruff over the library and the tests"
	@echo "make clean    remove _build (the venv and the data cache stay)"

# The venv is rebuilt only when the requirements change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# npm ci reinstalls node_modules exactly as package-lock.json says, only when it changes.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "The book needs Node.js and npm (Debian: apt-get install nodejs, and npm where nodejs does not bring it)"; exit 1; }
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

data: $(STAMP)
	$(BIN)/python -m optim_lessons.data

book: data $(NODE_STAMP)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is in _build/html: open $(CURDIR)/_build/html/index.html"

test: data $(NODE_STAMP)
	$(BIN)/python -m pytest --nbval $(XDIST)

# The library's unit tests only: no notebooks, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not browser and not slow" $(XDIST)

# --- Beyond the pinned set-up (neither is part of `make test`; each takes 30-60 min on 2 cores) ---
# The oldest torch that pyproject.toml declares, with the other pins of requirements.txt, in a
# venv of its own. Every notebook must run top to bottom there (outputs are not compared: they
# are checked on the pinned torch), and the unit tests must pass, except those marked
# pinned_torch (they check behaviour of the pinned torch that older releases lack).
COMPAT_VENV := .venv-compat
COMPAT_TORCH := torch==2.10.0 torchvision==0.25.0
COMPAT_PINS := $(shell grep -E '^(matplotlib|ipywidgets|tqdm|ipykernel|pytest|expecttest|hypothesis|lion-pytorch|schedulefree)==' requirements.txt | cut -d' ' -f1)
UNIT_TESTS_ONLY := --ignore=tests/test_site.py --ignore=tests/test_toc.py --ignore=tests/test_workflows.py

$(COMPAT_VENV)/.installed: requirements.txt pyproject.toml
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet $(COMPAT_TORCH) $(COMPAT_PINS) nbclient pyyaml
	$(COMPAT_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-compat: data $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/python -m optim_lessons.numerics $(COMPAT_VENV)/bin/python tests/run_notebooks.py \
		--python $(COMPAT_VENV)/bin/python --workdir _build/compat $(NOTEBOOKS)
	$(COMPAT_VENV)/bin/python -m pytest tests $(UNIT_TESTS_ONLY) -o addopts="-p no:cacheprovider" \
		-m "not browser and not slow and not pinned_torch"

# A rehearsal of Colab (tests/colab_rehearsal.py says what stands in for what): a venv with only
# what Colab's runtime brings (its own torch, ipywidgets 7, ipykernel), a working folder outside
# the repository, and the install cell pointed at this checkout's committed state.
COLAB_VENV := .venv-colab
COLAB_RUNTIME := torch==2.14.1 torchvision==0.29.1 matplotlib==3.11.2 tqdm==4.70.1 ipywidgets==7.7.1 ipykernel==7.4.0

$(COLAB_VENV)/.installed:  # built once; remove the folder to rebuild it
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet $(COLAB_RUNTIME)
	touch $@

test-colab: $(STAMP) $(COLAB_VENV)/.installed
	$(BIN)/python tests/colab_rehearsal.py --venv $(COLAB_VENV) --workdir _build/colab

execute: data
	@for nb in $(NOTEBOOKS); do \
		echo "executing $$nb"; \
		$(BIN)/python -m optim_lessons.numerics $(BIN)/jupyter execute --inplace --timeout=600 "$$nb" || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check optim_lessons tests book

clean:
	rm -rf _build
