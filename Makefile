# The README's two commands: `make demo` and `make test`.  Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps runtime-deps test-reliability bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# System programs (scripts/ensure-system-deps.sh): the demo needs only what firebus runs with
# (Mosquitto, the reports' Pango/HarfBuzz, a CJK font); the tests also need Chromium and its
# driver, openssl and poppler.  Tests start their own broker on a free port.
system-deps:
	@bash scripts/ensure-system-deps.sh test

runtime-deps:
	@bash scripts/ensure-system-deps.sh runtime

# Starts fresh each time; `make demo DEMO_ARGS=--keep` resumes the last demo database.
demo: venv runtime-deps
	$(BIN)/firebus demo $(DEMO_ARGS)

test: venv system-deps lint
	$(BIN)/python -m pytest -q

# The reliability suite alone (it is also part of `make test`): kills, broker outages,
# storage failures, fuzzing, misbehaving plugins — bounded to a few minutes.
test-reliability: venv system-deps
	$(BIN)/python -m pytest -q tests/reliability

# Every benchmark; one JSON line each, appended to bench/results.jsonl (see docs/benchmarks.md).
bench: venv system-deps
	$(BIN)/python bench/run_all.py

# ruff with the rule set in pyproject.toml; mypy, strict for the plugin contract (scripts/typecheck.sh).
lint: venv
	$(BIN)/python -m ruff check .
	PYTHON=$(abspath $(BIN))/python bash scripts/typecheck.sh

clean:
	rm -rf $(VENV) build *.egg-info
