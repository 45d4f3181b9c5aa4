#!/usr/bin/env bash
# ansible-lint, production profile, over the checkout's playbooks, roles, molecule scenarios
# and metadata (what it skips: .ansible-lint's exclude_paths).
#   tests/ci/lint.sh [extra ansible-lint arguments, e.g. roles/halo_agent]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO" || exit 1
timed "ansible-lint" ansible-lint --nocolor "$@"
