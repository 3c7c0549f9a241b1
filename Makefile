# cotmae-pipeline: every target works on a fresh machine (it runs scripts/setup.sh, which skips what is done).
# Set-up stamps live in .state/stamps/ (keyed by hashes of package-lock.json / trainer/requirements.lock);
# the TypeScript build stamp is dist/.build-stamp (rebuilt when a source file, tsconfig or the lock changes).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := test

NODE_BIN := node_modules/.bin
VENV := .venv
PYTHON := $(VENV)/bin/python
BUILD_STAMP := dist/.build-stamp
TS_DIRS := workflows activities workers infra lib cli test bench
TS_SOURCES = $(shell find $(TS_DIRS) -type f \( -name '*.ts' -o -name '*.json' \) 2>/dev/null)
NODE_TEST := node --test --test-concurrency=1 --test-reporter=spec

.PHONY: setup build lint test test-unit test-python test-integration demo clean distclean lock \
	temporal-up temporal-down temporal-status s3-up s3-down

setup:
	@bash scripts/setup.sh

# Rebuilt from scratch (dist/ removed first) so deleted sources leave no stale .js behind.
$(BUILD_STAMP): $(TS_SOURCES) tsconfig.json package-lock.json
	@echo "[build] tsc -p tsconfig.json"
	@rm -rf dist
	@$(NODE_BIN)/tsc -p tsconfig.json
	@mkdir -p $(@D) && touch $@

build: setup
	@$(MAKE) --no-print-directory -s $(BUILD_STAMP)
	@echo "[build] dist/ up to date"

lint: setup
	@echo "[lint] biome check"
	@$(NODE_BIN)/biome check .

test: setup build lint
	@$(MAKE) --no-print-directory test-unit test-python test-integration

# Node 20's `node --test` does not expand globs: the files are listed with find.
test-unit:
	@files=$$(find dist/test/unit -name '*.test.js' 2>/dev/null | sort); \
	if [[ -z "$$files" ]]; then echo "[test] no unit tests in dist/test/unit"; exit 0; fi; \
	echo "[test] unit tests"; \
	$(NODE_TEST) $$files

# pytest exit status 5 means "no tests collected": not a failure.
test-python:
	@if [[ ! -d trainer/tests ]]; then echo "[test] no trainer/tests, pytest skipped"; exit 0; fi; \
	echo "[test] pytest trainer"; \
	rc=0; $(PYTHON) -m pytest trainer || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "[test] pytest collected no tests"; exit 0; fi; \
	exit $$rc

test-integration:
	@files=$$(find dist/test/integration -name '*.test.js' 2>/dev/null | sort); \
	if [[ -z "$$files" ]]; then echo "[test] no integration tests in dist/test/integration"; exit 0; fi; \
	echo "[test] integration tests"; \
	$(NODE_TEST) $$files

demo: setup build
	node dist/cli/main.js demo

# Regenerate the fully pinned Python lock from trainer/requirements.in (needs PyPI).
lock: setup
	@$$(cat .state/uv-path) pip compile --quiet trainer/requirements.in -o trainer/requirements.lock --python-version 3.11
	@echo "[lock] trainer/requirements.lock regenerated; run make setup to apply it"

# Embedded Temporal dev server (SQLite under .state/temporal/, pid file .state/temporal/server.json).
temporal-up: build
	@node dist/infra/temporal.js start

temporal-down:
	@if [[ ! -f .state/temporal/server.json ]]; then echo "[temporal] not running"; exit 0; fi; \
	if [[ ! -f dist/infra/temporal.js ]]; then $(MAKE) --no-print-directory -s build; fi; \
	node dist/infra/temporal.js stop

temporal-status: build
	@node dist/infra/temporal.js status

# S3-compatible server (moto) for `--artifacts s3://...` on one machine; `node dist/infra/s3.js env` prints its settings.
s3-up: build
	@node dist/infra/s3.js start

s3-down:
	@if [[ ! -f dist/infra/s3.js ]]; then $(MAKE) --no-print-directory -s build; fi; \
	node dist/infra/s3.js stop

# Build outputs only; set-up (node_modules, faiss-node addon, .venv) and the dev server's SQLite file stay.
clean:
	@if [[ -f dist/infra/temporal.js ]]; then node dist/infra/temporal.js stop || true; fi
	rm -rf dist $(BUILD_STAMP)

# Everything set-up created, including the dev server's SQLite file: the next make starts from scratch.
distclean: clean
	rm -rf node_modules $(VENV) .cache .state
