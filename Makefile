# Every target installs what it needs into the project's own virtual environment (.venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MPLBACKEND := Agg

.PHONY: install test unit run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

unit: install
	$(BIN)/python -m pytest tests

test: unit

run: install
	$(BIN)/cvgad train --dataset digits --anomaly-class 1 --seed 0 --out runs/digits-1

clean:
	rm -rf runs book/_build
