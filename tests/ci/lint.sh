#!/usr/bin/env bash
# ansible-lint, production profile, over the checkout's playbooks, roles, molecule scenarios
# and metadata (what it skips: .ansible-lint's exclude_paths).
#   tests/ci/lint.sh [extra ansible-lint arguments, e.g. roles/halo_agent]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
scratch_dir
# Offline, ansible-lint does not install the collection it lints; its syntax check resolves
# cloudpassage.halo.* (modules, roles, the action group) through this link to the checkout,
# first on the path so that no other installed copy is used.
mkdir -p "$SCRATCH/ansible_collections/cloudpassage"
ln -s "$REPO" "$SCRATCH/ansible_collections/cloudpassage/halo"
export ANSIBLE_COLLECTIONS_PATH="$SCRATCH${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
cd "$REPO" || exit 1
timed "ansible-lint" ansible-lint --nocolor "$@"
