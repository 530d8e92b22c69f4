# OpenCTS: `make run` starts the local stack, `make test` runs lint and every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint unit bench clean awscli package policies

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "pip<26.3"  # chalice 1.34 requires pip<26.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

# awscli v1 (validate-logs) in a separate venv: it pins a botocore of its own.
AWSCLI_VENV := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed-stamp
$(AWSCLI_STAMP): requirements-awscli.txt
	test -x $(AWSCLI_VENV)/bin/python || $(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-awscli.txt
	touch $@

awscli: $(AWSCLI_STAMP)

run: install
	$(BIN)/python -m chalicelib.local $(if $(FAST),--fast,)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint awscli
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

bench: install awscli
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query_amplification.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/notify_latency.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/trace_files.py

# The SAM/CloudFormation template of STAGE in out/STAGE (sam.json, deployment.zip), linted by
# cfn-lint. `make test` checks the same through tests/integration/test_package.py.
STAGE ?= dev
package: install
	$(BIN)/python -m chalicelib.packaging --stage $(STAGE) --out out/$(STAGE) --lint

# Regenerates every stage's per-function IAM policy files after app.py or chalicelib/iam.py changed.
policies: install
	$(BIN)/python -m chalicelib.stage_config

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) .opencts .mypy_cache .ruff_cache .pytest_cache out
