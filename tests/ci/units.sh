#!/usr/bin/env bash
# ansible-test units over tests/unit, in the project venv (--local): the same tests as
# `pytest tests/unit`, run the way collection CI runs them (ansible-test's collection loader
# and pytest plugins). Needs mock, pytest-mock and pytest-xdist (requirements-dev.txt).
#   tests/ci/units.sh [extra ansible-test units arguments]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
scratch_dir
tree=$(collection_tree "$SCRATCH")
cd "$tree" || exit 1
timed "ansible-test units" ansible-test units --local --python "$PYTHON_VERSION" --color no "$@"
