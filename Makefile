# The README's two commands: `make demo` and `make test`.  Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps test-reliability bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Mosquitto is a test dependency (tests start their own broker on a free port).
system-deps:
	@bash scripts/ensure-system-deps.sh

demo: venv system-deps
	$(BIN)/firebus demo

test: venv system-deps
	$(BIN)/python -m pytest -q

# The reliability suite alone (it is also part of `make test`): kills, broker outages,
# storage failures, fuzzing, misbehaving plugins — bounded to a few minutes.
test-reliability: venv system-deps
	$(BIN)/python -m pytest -q tests/reliability

# Every benchmark; one JSON line each, appended to bench/results.jsonl (see docs/benchmarks.md).
bench: venv system-deps
	$(BIN)/python bench/run_all.py

lint: venv
	$(BIN)/python -m ruff check core sdk plugins tests

clean:
	rm -rf $(VENV) build *.egg-info
