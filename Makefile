# Two entry points for a fresh machine (see README):
#   make demo   install into .venv, then run the demo DAG end to end on the embedded demo scene
#   make test   install into .venv, then run the test suite (style and import-layer guards included)
#   make format apply ruff (format + import order) and snakefmt, the style `make test` checks
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= 2
BIN     = $(VENV)/bin

.PHONY: demo test install lint format dryrun-paper report clean-results

$(BIN)/san: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e ".[test]"
	$(BIN)/san build-kernel || echo "note: no C++ CPU hash-grid kernel; the pure-torch backend is used (slower)"
	touch $(BIN)/san

install: $(BIN)/san

demo: install
	$(BIN)/snakemake --cores $(CORES)

report: install
	$(BIN)/snakemake --cores $(CORES) --report results/report/report.html

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/python .ci/check_lint.py $(BIN)/snakemake

format: install
	$(BIN)/ruff check --fix-only --select I san tests scripts workflow/scripts benchmarks
	$(BIN)/ruff format san tests scripts workflow/scripts benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

clean-results:
	rm -rf results .snakemake
