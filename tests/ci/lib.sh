# shellcheck shell=bash
# Shared by the check scripts of tests/ci (sourced, not run). Each script is runnable on its
# own from any directory: tests/ci/<check>.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV_BIN=${VENV_BIN:-$REPO/.venv/bin}
export PATH="$VENV_BIN:$PATH"
PYTHON_VERSION=${PYTHON_VERSION:-3.11}

# A scratch directory removed when the script exits, however it exits.
scratch_dir() {
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/halo-ci.XXXXXX")
  trap 'rm -rf "$SCRATCH"' EXIT
}

# build_collection DIR: build the Galaxy tarball of the checkout into DIR, print its path.
build_collection() {
  ansible-galaxy collection build --force --output-path "$1" "$REPO" >/dev/null
  ls "$1"/cloudpassage-halo-*.tar.gz
}

# collection_tree DIR: DIR/ansible_collections/cloudpassage/halo with exactly the files the
# Galaxy build ships (galaxy.yml's build_ignore decides), which is where ansible-test needs
# the collection. grid/, devtools/ and the like stay out without any sanity ignore entries.
collection_tree() {
  local tarball root
  tarball=$(build_collection "$1")
  root="$1/ansible_collections/cloudpassage/halo"
  mkdir -p "$root"
  tar -xzf "$tarball" -C "$root"
  echo "$root"
}

# ansible-test bootstraps pip in each venv it makes with a get-pip script that it downloads
# from a host CI cannot reach; it uses a cached copy first, so put our stand-in there.
install_get_pip_standin() {
  local version
  version=$(python - <<'PY'
import os, re
import ansible_test
source = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
  mkdir -p ~/.ansible/test/cache
  cp "$REPO/tests/ci/get_pip_standin.py" ~/.ansible/test/cache/"get_pip_${version//./_}.py"
  # Only what pip needs to reach the index: CA bundles, pip settings, proxies.
  python - > ~/.ansible/test/cache/get_pip_env.json <<'PY'
import json, os, re
wanted = re.compile(r"^(PIP_.*|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|(HTTPS?|NO)_PROXY)$", re.I)
print(json.dumps(dict((k, v) for k, v in os.environ.items() if wanted.match(k)), indent=1))
PY
}

# timed NAME COMMAND...: run COMMAND and say how long it took (the checks' cost is reported).
timed() {
  local name=$1 started status=0
  shift
  started=$(date +%s)
  "$@" || status=$?
  echo "== $name: $( [ $status = 0 ] && echo ok || echo "FAILED ($status)" ) in $(( $(date +%s) - started ))s" >&2
  return $status
}
