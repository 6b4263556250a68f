# The two commands a newcomer runs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DATACLOUD_TOOLS_BIN ?= $(HOME)/.cache/datacloud-tools/bin
export PATH := $(DATACLOUD_TOOLS_BIN):$(PATH)

.PHONY: run up down test lint unit integration crds chart-files tools venv bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

tools:
	bash tools/build.sh >/dev/null

run: venv tools     ## the operator on the embedded dev stack, in the foreground; Ctrl-C stops all
	$(PY) -m datacloud dev run --dir .dev $(DEV_FLAGS)

up: venv tools      ## the same stack in the background
	$(PY) -m datacloud dev up --dir .dev $(DEV_FLAGS)

down: venv          ## stop what `make up` started
	$(PY) -m datacloud dev down --dir .dev

crds: venv          ## regenerate crds/ (and the chart's copies) and docs/reference/ from the typed models
	$(PY) -m datacloud crds --out crds
	$(PY) -m datacloud.api.reference --out docs/reference
	$(MAKE) chart-files

chart-files:        ## the chart carries copies of crds/ and the alert rules (a test keeps them equal)
	rm -f charts/datacloud-operator/crds/*.yaml
	cp crds/*.yaml charts/datacloud-operator/crds/
	cp monitoring/rules/datacloud-alerts.yaml charts/datacloud-operator/files/

lint: venv
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m datacloud crds --check --out crds
	$(PY) -m datacloud.api.reference --check --out docs/reference

unit: venv
	$(VENV)/bin/pytest tests/unit -q

integration: venv tools
	$(VENV)/bin/pytest tests/integration -q

test: venv tools lint   ## everything .ci/run runs
	$(VENV)/bin/pytest tests -q -p no:cacheprovider --durations=15; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: venv tools   ## every benchmark; JSON in bench/results/
	bash tools/build.sh --bench >/dev/null
	$(PY) bench/sync_bench.py
	$(PY) bench/failover_bench.py
	$(PY) bench/lease_bench.py
	$(PY) bench/zones_bench.py
	$(PY) bench/cities_bench.py
	$(PY) bench/census_bench.py
	$(PY) bench/replicas_bench.py --replicas 1000
	$(PY) bench/dr_nemesis.py --faults 200 --seed 1

clean:
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
