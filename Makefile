# carebridge: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= var/demo
DEMO_DB  ?= sqlite:///$(DEMO_DIR)/carebridge.db
DEMO_PATIENTS ?= 500
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv demo test test-postgres test-all check format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/carebridge demo --dir $(DEMO_DIR) --db $(DEMO_DB) --patients $(DEMO_PATIENTS) --host $(HOST) --port $(PORT)

# The default suite: everything that needs no external service. Tests marked postgres/mqtt/spark/browser
# run from .ci/run against real services; here they are deselected, never skipped.
test: $(STAMP)
	$(BIN)/pytest -n 2 -m "not postgres and not mqtt and not spark and not browser" --cov --cov-report=term:skip-covered

test-postgres: $(STAMP)
	$(BIN)/pytest -m postgres -p no:randomly

check: $(STAMP)
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_module_sizes.py

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

bench: $(STAMP)
	$(BIN)/python bench/fhir_ingest.py
	$(BIN)/python bench/fhir_search.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
