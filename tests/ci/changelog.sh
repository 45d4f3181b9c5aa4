#!/usr/bin/env bash
# antsibull-changelog lint: changelogs/config.yaml, changelogs/changelog.yaml and every
# fragment in changelogs/fragments (each change adds one).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO" || exit 1
timed "antsibull-changelog lint" antsibull-changelog lint "$@"
