#!/usr/bin/env bash
# ansible-test sanity over the collection as Galaxy ships it, every test that applies.
#   tests/ci/sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
# Cold (first run on a machine) it builds its venvs: a couple of minutes; warm: seconds.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
scratch_dir
install_get_pip_standin
tree=$(collection_tree "$SCRATCH")
cd "$tree" || exit 1
timed "ansible-test sanity" ansible-test sanity --venv --python "$PYTHON_VERSION" --color no "$@"
