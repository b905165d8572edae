# Two commands: `make serve` and `make test`. Everything else is what they depend on.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test install playground-assets codegen-tools browser clients schema lint bench soak bench-read clean

serve: install playground-assets
	$(BIN)/training-files serve

test: install playground-assets codegen-tools browser lint
	$(BIN)/pytest -n 2 --dist loadfile

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (set PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# GraphiQL's files for an offline playground, exactly the versions (and hashes) the page pins,
# copied into the package so that an installed wheel carries them too.
ASSETS := graphql_api/graphql/playground_assets/.vendored

playground-assets: $(ASSETS)

$(ASSETS): package-lock.json $(STAMP)
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && \
		$(BIN)/python -m graphql_api.graphql.playground node_modules && touch $@; \
	else \
		echo "npm not found: the playground will load its files from the CDN (needs internet)."; \
	fi

# ariadne-codegen (the Python client's generator) needs a graphql-core older than the server's, so
# it gets a virtualenv of its own; the client it writes runs in ours.
CODEGEN := $(VENV)/codegen

codegen-tools: $(CODEGEN)/.installed

$(CODEGEN)/.installed: clients/python/requirements.txt | $(STAMP)
	$(PYTHON) -m venv $(CODEGEN)
	$(CODEGEN)/bin/pip install --quiet -r clients/python/requirements.txt
	@touch $@

# Chromium for the playground's browser test: Debian's package (`playwright install` downloads
# its browsers from a CDN outside the package registries, which fails here and on CI). Installed
# only as root with apt-get, as on CI; elsewhere the test skips and says so.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium not found: the playground's browser test will skip (apt-get install chromium)."; \
	fi

# Typed clients for your own code, from schema.graphql and clients/operations (not committed):
# clients/typescript/generated/ and clients/python/training_files_client/.
clients: playground-assets codegen-tools
	node_modules/.bin/graphql-codegen --config clients/typescript/codegen.ts
	$(CODEGEN)/bin/ariadne-codegen client

schema: install
	$(BIN)/training-files export-schema > schema.graphql

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Creates and adds over GraphQL on local storage and S3 (moto), each figure beside its target;
# `make bench BENCH_ARGS=--huge` also builds and extends a 100,000-conversation file (hours).
bench: install
	$(BIN)/python -m bench.aggregation $(BENCH_ARGS)

# 16 clients for 60 s against a real server, half of the requests changing files; then `check`.
soak: install
	$(BIN)/python -m bench.soak

# The dashboard query on our server against PostGraphile 4.14 on the same data (needs npm).
bench-read: install
	npm ci --prefix bench/postgraphile --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python -m bench.read $(BENCH_READ_ARGS)

clean:
	rm -rf $(VENV) node_modules
