# The whole set-up is `make demo` and `make test`: each creates .venv and installs the project.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format ui bench clean report-screenshot

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import onramp, dbt, dagster, sendgrid" 
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/onramp demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	eval "$$($(BIN)/python -m onramp.dbt env)" && $(BIN)/sqlfluff lint dbt_project/models
	eval "$$($(BIN)/python -m onramp.dbt env)" && DBT_TARGET_PATH=target $(BIN)/dbt parse --project-dir . --quiet && $(BIN)/dbt-bouncer run --config-file dbt-bouncer.yml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ui: $(STAMP)
	$(BIN)/onramp ui

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# The README's picture of the funnel report, from the sample data (headless Chromium when present).
report-screenshot: $(STAMP)
	$(BIN)/python -m cli.report_screenshot docs/images/funnel_report.png

clean:
	rm -rf $(VENV) target logs .pytest_cache .import_linter_cache
