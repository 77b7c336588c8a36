# sendwise: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-shop

.DEFAULT_GOAL := help
.PHONY: help venv install install-test demo test lint typecheck imports format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python ## create the virtual environment in .venv

install: venv ## install sendwise into .venv
	$(BIN)/pip install --quiet -e .

install-test: venv ## install sendwise with its test tools
	$(BIN)/pip install --quiet -e '.[test]'

demo: install ## simulate a shop and run every step end to end (outputs in ./demo-shop)
	$(BIN)/sendwise demo --project $(DEMO)

test: install-test ## run the whole test suite
	$(BIN)/python -m pytest

lint: install-test ## ruff lint and format check, mypy on src/, the import-linter layer contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(MAKE) --no-print-directory typecheck imports

typecheck: install-test ## mypy on src/ (settings in pyproject.toml [tool.mypy])
	$(BIN)/mypy

imports: install-test ## the layer contracts of docs/architecture.md (pyproject.toml [tool.importlinter])
	$(BIN)/lint-imports --no-cache

format: install-test ## format the code with ruff
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install ## run every benchmark under bench/ (minutes; prints the figures)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## remove the virtual environment and the demo shop
	rm -rf $(VENV) $(DEMO) .pytest_cache build src/*.egg-info
