# Every target sets itself up: a fresh machine needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test test-deep dev bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/ewh demo

# The UI test drives Debian's chromium (a registry package, no browser download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "the UI test needs Debian's chromium: sudo apt-get install chromium"; exit 1; fi

test: setup $(CHROMIUM)
	$(BIN)/python -m pytest

# The warehouse against the independent reference model (tests/reference) on >= 20,000
# generated users over several seeds (`make test` runs it on 2,000 users, one seed).
test-deep: setup $(CHROMIUM)
	EWH_REFERENCE_DEEP=1 $(BIN)/python -m pytest -m reference tests/integration/test_reference_model.py

dev: setup
	$(BIN)/ewh dev --host 127.0.0.1 --port 3000

bench: setup
	$(BIN)/python -m bench.run --sizes 1000000,10000000
	$(BIN)/python -m bench.predictions --users 250000

.PHONY: bench-large
bench-large: setup
	$(BIN)/python -m bench.run --sizes 50000000 --memory-limit 16GB --out bench/results/large.json

lint: setup
	$(BIN)/ruff check ewh orchestration tests bench
	$(BIN)/sqlfluff lint models macros

clean:
	rm -rf target logs data .dagster_home
