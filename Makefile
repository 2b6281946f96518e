# Every target installs what it needs into the project's own virtual environment (.venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lint test unit nbval checked run benchmark gpu-check results clean book book-vendor book-clean book-distclean screenshots chromium student

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# The cores the notebooks and tests may use (this machine's, unless THREADS says otherwise): the
# book executes THREADS chapters at a time and the unit tests run in THREADS processes, each with
# one PyTorch thread; nbval runs one notebook at a time with THREADS threads.
THREADS    ?= $(shell nproc 2>/dev/null || echo 1)
NB_ENV     := OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS)
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# The tests that read the built book (its rendered pages, its executed chapters) run after it.
# The others run in THREADS pytest workers (pytest-xdist), each with one PyTorch thread.
BOOK_TESTS := tests/test_book_render.py tests/test_checked_cells.py
unit: install
	MPLBACKEND=Agg $(ONE_THREAD) $(BIN)/python -m pytest -n $(THREADS) tests $(addprefix --ignore=,$(BOOK_TESTS))

# The linters CI runs: ruff (lint and format) and mypy over the library (configured in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# nbval re-runs every notebook and compares the cells tagged nbval-check-output (without the book).
nbval: install
	cd notebooks && $(NB_ENV) ../$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider -q .

# The same check without running the chapters again: the tagged cells of the book's execution
# (make book) against the committed outputs. run.ipynb, the papermill template and no chapter,
# has no tagged cell; the unit tests execute it with every run parameter.
checked: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_checked_cells.py

# All of CI, each stage timed (the times repeated at the end): the linters, unit tests, the book
# from an empty execution cache (each chapter runs once; warnings as errors), the checked cells
# of that execution, and the rendering in headless Chromium (equation widths, figures, widgets;
# never skipped).
TIMES := $(VENV)/test-times.txt
STAGE := .ci/stage $(TIMES)
SUB   := $(MAKE) --no-print-directory
test:
	@rm -f $(TIMES)
	@$(STAGE) install $(SUB) install
	@$(STAGE) lint $(SUB) lint
	@$(STAGE) unit $(SUB) unit
	@$(STAGE) book $(SUB) book-clean book
	@$(STAGE) checked $(SUB) checked
	@$(STAGE) chromium $(SUB) chromium
	@$(STAGE) render env CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q tests/test_book_render.py
	@echo "make test, seconds per stage:" && cat $(TIMES)

run: install
	$(BIN)/cvgad train --dataset digits --anomaly-class 1 --seed 0 --out runs/digits-1

benchmark: install
	$(BIN)/python benchmarks/throughput.py

# Remake every record the book reads that is not current (ablations/records.yaml), in order and
# resumable; `cvgad reproduce --dry-run` lists them with their measured cost first.
results: install
	$(BIN)/cvgad reproduce $(if $(CVGAD_DATA),--data-root $(CVGAD_DATA))

# The one prepared GPU run (parity, throughput, packed paper preset); on a machine without CUDA
# it runs the CPU parts and says so. JSON into GPU_CHECK_OUT.
GPU_CHECK_OUT ?= benchmarks/results/gpu_check
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py --out $(GPU_CHECK_OUT) $(if $(CVGAD_DATA),--data-root $(CVGAD_DATA))

# The students' copy of the exercises, without solutions or discussion answers, in STUDENT_DIR.
STUDENT_DIR ?= student
student: install
	$(BIN)/cvgad student $(STUDENT_DIR)

clean:
	rm -rf runs book/_build

# ---------------------------------------------------------------- Jupyter Book
# `make book` executes the chapters, THREADS at a time, into the execution cache
# (book/_build/.jupyter_cache; book/execute.py), then builds book/_build/html from
# it with warnings as errors.  MathJax comes from
# sphinx-mathjax-offline; the ipywidgets manager and require.js are installed
# with npm into book/_vendor (git-ignored) and served from the book's _static.
BOOK_VENDOR  := book/_vendor
WIDGETS_DIR  := $(BOOK_VENDOR)/static/widgets
HTML_MANAGER ?= @jupyter-widgets/html-manager@^1.0.15
REQUIREJS    ?= requirejs@^2.3.7
NPM          ?= npm
CHROMIUM     ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome || echo /usr/bin/chromium)
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(WIDGETS_DIR)/embed-amd.js:
	$(NPM) install --prefix $(BOOK_VENDOR)/npm --no-audit --no-fund --ignore-scripts --loglevel=error $(HTML_MANAGER) $(REQUIREJS)
	mkdir -p $(WIDGETS_DIR)
	cp $(BOOK_VENDOR)/npm/node_modules/requirejs/require.js $(WIDGETS_DIR)/
	cd $(BOOK_VENDOR)/npm/node_modules/@jupyter-widgets/html-manager/dist && \
	  cp *.woff *.woff2 *.ttf *.eot *.svg embed-amd.js $(CURDIR)/$(WIDGETS_DIR)/

book-vendor: $(WIDGETS_DIR)/embed-amd.js

book: install book-vendor
	env -u MPLBACKEND $(ONE_THREAD) $(BIN)/python book/execute.py --jobs $(THREADS) $(if $(WRITE_BACK),--write-back)
	env -u MPLBACKEND $(BIN)/jupyter-book build book -W -n --keep-going
	@echo "Open book/_build/html/index.html"

book-clean:
	rm -rf book/_build

book-distclean: book-clean
	rm -rf $(BOOK_VENDOR)

# Headless Chromium for the rendered-page tests and the screenshots: Debian's `chromium` is
# installed where none is found, else make stops and says what is missing.
chromium:
	@test -x "$(CHROMIUM)" || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; } || { \
	  echo "No Chromium at $(CHROMIUM), and apt-get could not install Debian's chromium. Install it" >&2; \
	  echo "(apt-get install -y chromium) or set CHROMIUM=/path/to/chrome: the rendered-page tests need it." >&2; \
	  exit 1; }

# Screenshots of every built page into book/_build/screenshots/ (headless Chromium), and the
# share of each page that is code.
screenshots: book chromium
	$(BIN)/python book/screenshots.py --chromium $(CHROMIUM) --report
