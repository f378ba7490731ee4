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

.PHONY: help setup data book test test-fast execute lint clean

help:
	@echo "make book     set up, then build the site into _build/html (from stored outputs)"
	@echo "make test     set up, then run the unit tests and every notebook (pytest --nbval)"
	@echo "make execute  re-run every notebook in place to refresh its stored outputs"
	@echo "make test-fast  the library's unit tests only (no notebooks, no browser)"
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

execute: data
	@for nb in $(NOTEBOOKS); do \
		echo "executing $$nb"; \
		$(BIN)/python -m optim_lessons.numerics $(BIN)/jupyter execute --inplace --timeout=600 "$$nb" || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check optim_lessons tests book

clean:
	rm -rf _build
