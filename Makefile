# The two contract commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: setup demo test lint bench report-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m sparkmice impute --input sparkmice/data/nhanes.csv --output out/nhanes_imputed \
		--m 5 --maxit 50 --seed 1 --overwrite
	$(PY) -m sparkmice impute --input sparkmice/data/health_mar.parquet --output out/health_imputed \
		--m 5 --maxit 50 --seed 1 --overwrite

test: setup
	$(VENV)/bin/ruff check sparkmice jobs tests benchmarks
	$(VENV)/bin/mypy sparkmice
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: setup
	$(VENV)/bin/ruff check sparkmice jobs tests benchmarks
	$(VENV)/bin/mypy sparkmice

bench: setup
	$(PY) benchmarks/run.py

report-check: setup  # render a report and screenshot it in headless Chromium (apt: chromium)
	$(PY) benchmarks/report_check.py

clean:
	rm -rf $(VENV) out spark-warehouse
