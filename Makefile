# One way to run everything: CI, the README and developers use these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 matches the Lambda runtime (and `sam build` needs it on PATH); fall back to python3.
# Each candidate must actually start: a pyenv shim answers `command -v` even when no 3.12 is selected.
PYTHON ?= $(shell for p in python3.12 $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 2>/dev/null | sort -V -r) python3; do \
	$$p -c '' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
TOOLS  := .venv-tools
TBIN   := $(CURDIR)/$(TOOLS)/bin
export TZ := UTC
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

.PHONY: help install tools chromium run test pytest lint validate build lock bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml layers/leadflow/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[local,dev]'
	touch $@

install: $(VENV)/.installed ## create .venv with LeadFlow, the local runtime and the test tools

# SAM CLI and cfn-lint live in their own venv: their pins must not steer the runtime's.
# cfn-lint 1.54+ no longer runs the SAM transform, so it is pinned at 1.53.3.
$(TOOLS)/.installed:
	test -x $(TBIN)/python || $(PYTHON) -m venv $(TOOLS)
	$(TBIN)/python -m pip install -q --upgrade pip
	$(TBIN)/python -m pip install -q 'aws-sam-cli==1.170.0' 'cfn-lint==1.53.3'
	touch $@

tools: $(TOOLS)/.installed ## install the SAM CLI and cfn-lint

run: install ## run LeadFlow locally with demo traffic (Ctrl-C to stop)
	$(BIN)/leadflow up --demo

test: install tools lint validate pytest ## install everything and run the whole suite

# Headless Chromium renders the funnel report page in its test (tests/e2e/test_report_page.py): Debian's package,
# installed as root when /usr/bin/chromium is missing; nothing to do when it is there.
chromium: ## install Debian's chromium for the report page test (a no-op when present)
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

pytest: install chromium
	$(BIN)/python -m pytest -n 2 -q

lint: install ## ruff
	$(BIN)/ruff check layers functions infra tests bench

# SAM and cfn-lint need a region and credentials to start, never a real account: dummy values, for these
# commands only.
AWS_DUMMY := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing SAM_CLI_TELEMETRY=0

# Node tools (asl-validator) are pinned in package.json / package-lock.json; `npm ci` runs only when those change.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The journeys (statemachines/) and the test-only ASL under tests/, with their ${Substitutions} in place.
ASL_FILES := $(wildcard statemachines/*.asl.json tests/events/*.asl.json)

validate: tools node_modules/.installed ## lint template.yaml (SAM transform + cfn-lint) and the ASL files
	$(AWS_DUMMY) $(TBIN)/sam validate --lint --template template.yaml
	$(AWS_DUMMY) $(TBIN)/cfn-lint template.yaml
	$(if $(ASL_FILES),npx --no-install asl-validator $(addprefix --json-path ,$(ASL_FILES)))

# The layer builds with layers/leadflow/Makefile (BuildMethod: makefile): the locked wheels for arm64/CPython 3.12 and
# the leadflow package without the operator CLI. Then every module, layer and functions, gets its bytecode for
# the runtime's Python (Lambda's /opt and /var/task are read-only: a module without a usable .pyc is compiled
# on every cold start). unchecked-hash: a timestamp .pyc is trusted only while the .py keeps the mtime it was
# compiled against, which zipping and unzipping do not keep reliably (2-second DOS times, no time zone), so
# Lambda would ignore it; a hash-based .pyc ignores mtimes, and unchecked skips hashing the source at import
# (a layer version and a function zip never change after the build, and the check below verifies the hashes).
# --cached rebuilds the layer when layers/leadflow changes; the stamp of the shipped defaults (infra/*/default.yaml,
# copied into the layer by its Makefile) lives there so that an edited default rebuilds it too.
build: tools ## sam build the layer and functions into .aws-sam/ (arm64, python3.12, bytecode checked)
	cat infra/*/default.yaml | $(TBIN)/python -c "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())" > layers/leadflow/.defaults.sha256
	PATH=$(TBIN):$(BIN):$(dir $(PYTHON)):$$PATH $(AWS_DUMMY) $(TBIN)/sam build --template template.yaml --cached --parallel
	$(TBIN)/python -m compileall -q -f --invalidation-mode unchecked-hash .aws-sam/build
	$(TBIN)/python infra/packaging/check_bytecode.py --python-tag cpython-312 .aws-sam/build
	$(TBIN)/python infra/packaging/layer_size.py .aws-sam/build/LeadflowLayer

# uv resolves for the Lambda platform (pip-compile resolves for this machine). The layer omits boto3, botocore
# and what only they need: the runtime provides them (README, "Deploying"). Add --upgrade to move pins.
LOCK_FLAGS ?=
$(TBIN)/uv: $(TOOLS)/.installed
	$(TBIN)/python -m pip install -q 'uv==0.13.8'

lock: $(TBIN)/uv ## re-lock the layer (layers/leadflow/requirements.lock, with hashes) from its requirements.txt
	$(TBIN)/uv pip compile layers/leadflow/requirements.txt --quiet --generate-hashes \
		--python-version 3.12 --python-platform aarch64-manylinux_2_34 \
		--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
		--no-emit-package urllib3 --no-emit-package python-dateutil \
		--custom-compile-command 'make lock' $(LOCK_FLAGS) -o layers/leadflow/requirements.lock

bench: install ## benchmarks (ratios against a floor measured in the same run); fails when a target is missed
	status=0; $(BIN)/python bench/cold_start.py || status=1; $(BIN)/python bench/capture.py || status=1; $(BIN)/python bench/scoring.py || status=1; $(BIN)/python bench/push.py || status=1; $(BIN)/python bench/journeys.py || status=1; $(BIN)/python bench/events.py || status=1; $(BIN)/python bench/routing.py || status=1; $(BIN)/python bench/report.py || status=1; exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .hypothesis node_modules
