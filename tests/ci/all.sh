#!/usr/bin/env bash
# Every collection check of tests/ci, each in its own process; all run even when one fails,
# and the exit status says whether any failed. Each prints "== <check>: ok|FAILED in Ns".
#   tests/ci/all.sh
set -uo pipefail
here=$(dirname "$0")
failed=()
for check in changelog build lint units sanity; do
  "$here/$check.sh" || failed+=("$check")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests/ci: failed: ${failed[*]}" >&2
  exit 1
fi
echo "tests/ci: all checks passed"
