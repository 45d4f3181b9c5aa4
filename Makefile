# Two entry points (README.md): `make demo` runs the admission flow against the embedded grid,
# `make test` runs every test. Both build the virtualenv they need first.
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# ansible-playbook and ansible-doc find this checkout as the collection cloudpassage.halo here.
COLLECTIONS := $(CURDIR)/.collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/cloudpassage/halo
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: demo test test-python test-postgresql test-collection test-molecule bench venv clean

venv: $(VENV)/.installed $(COLLECTION_LINK)

# devtools: the package halodev (test launchers, prepared trees, lab hosts, the demo), editable
# so that it runs on this checkout.
$(VENV)/.installed: requirements-dev.txt grid/pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -e 'grid[postgresql]' -e devtools
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

demo: venv
	$(BIN)/python -m halodev.demo

# Every test: the Python suites, the collection checks, and the role's molecule scenario.
test: test-python test-postgresql test-collection test-molecule

# Grid and agent, the collection's unit tests, and the integration tests that run real
# ansible-playbook against a real grid, real agents and lab hosts. They mostly wait on
# processes, so four workers fit two cores.
test-python: venv
	$(BIN)/python -m pytest -n 4

# The grid's tests again with PostgreSQL as its database (a throw-away cluster).
test-postgresql: venv
	grid/tests/with_postgresql.sh $(BIN)/python -m pytest -n 4 grid/tests

# What a collection reviewer runs: changelog lint, Galaxy build + install + ansible-doc,
# ansible-lint (production profile), ansible-test units and sanity.
test-collection: venv
	tests/ci/all.sh

# The halo_agent role on lab hosts against a real grid (delegated driver, no Docker): install
# and idempotence (default), restart and removal (lifecycle), the vendor's cphalo path in
# check mode, since the vendor repository cannot be reached from CI (vendor).
test-molecule: venv
	molecule test -s default
	molecule test -s lifecycle
	molecule test -s vendor

# The scale benchmarks (bench/run_all.py): figures beside the scale targets, no asserts, and
# the time from a host's drift to its demotion (bench/drift_to_demotion.py, --drift 0 skips it).
# Modest sizes by default (about 25 minutes); BENCH_ARGS="--admission 100 1000 --fleet 10000
# --postgresql" for the target sizes on both databases.
BENCH_ARGS ?=
bench: venv
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(COLLECTIONS) tests/output .demo .pytest_cache
