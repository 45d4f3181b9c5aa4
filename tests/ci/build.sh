#!/usr/bin/env bash
# The Galaxy artifact: build it, check that nothing of the development tree ships in it,
# install it into an empty collections path, render the documentation of every plugin and
# role from that install with ansible-doc (any error or warning fails the check), and have
# ansible-builder check the execution environment definition that packs the tarball.
#   tests/ci/build.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
scratch_dir

check() {
  local tarball shipped leaked installed root status=0 type name file fqcn
  tarball=$(build_collection "$SCRATCH/dist")
  echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

  # Development-only content stays out: the grid, the dev tooling (halodev), and what needs them to
  # run (molecule scenarios, pytest integration tests), benchmarks, CI, caches.
  shipped=$(tar -tzf "$tarball")
  leaked=$(grep -E '^(grid|devtools|bench|ARCHITECTURE\.md|\.ci|\.venv|\.collections|\.pytest_cache|\.git|tests/output|tests/integration|extensions/molecule)(/|$)|(^|/)__pycache__/' <<<"$shipped" || true)
  if [ -n "$leaked" ]; then
    echo "the tarball ships development files (add them to galaxy.yml build_ignore):" >&2
    head -20 <<<"$leaked" >&2
    status=1
  fi

  installed="$SCRATCH/installed"
  # Only the fresh install may be found, not this checkout or another installed copy.
  export ANSIBLE_COLLECTIONS_PATH="$installed" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
  cd "$SCRATCH" || return 1
  ansible-galaxy collection install --offline --force "$tarball" -p "$installed" >/dev/null
  root="$installed/ansible_collections/cloudpassage/halo"

  local documented=0
  shopt -s nullglob
  for file in "$root"/plugins/*/*.py "$root"/roles/*/; do
    case "$file" in
      # Action plugins carry no docs of their own: their module of the same name documents them.
      */module_utils/* | */doc_fragments/* | */action/* | */__init__.py) continue ;;
      */roles/*) type=role; name=$(basename "$file") ;;
      */plugins/modules/*) type=module; name=$(basename "$file" .py) ;;
      *) type=$(basename "$(dirname "$file")"); name=$(basename "$file" .py) ;;
    esac
    fqcn="cloudpassage.halo.$name"
    if ! ansible-doc -t "$type" "$fqcn" >"$SCRATCH/doc.out" 2>"$SCRATCH/doc.err" \
        || grep -qE '\[(WARNING|ERROR)\]' "$SCRATCH/doc.err" || [ ! -s "$SCRATCH/doc.out" ]; then
      echo "ansible-doc -t $type $fqcn does not render:" >&2
      sed 's/^/  /' "$SCRATCH/doc.err" >&2
      status=1
    else
      documented=$((documented + 1))
    fi
  done
  echo "ansible-doc rendered $documented plugins and roles from the installed tarball"

  # The execution environment definition takes this tarball (dist/ next to it): let
  # ansible-builder validate it and write the build context (no container is built).
  mkdir -p "$SCRATCH/ee/dist"
  cp "$REPO/execution-environment.yml" "$SCRATCH/ee/"
  cp "$tarball" "$SCRATCH/ee/dist/"
  if ansible-builder create -f "$SCRATCH/ee/execution-environment.yml" -c "$SCRATCH/ee/context" >"$SCRATCH/ee.log" 2>&1 \
      && [ -n "$(ls "$SCRATCH"/ee/context/_build/collections/*.tar.gz)" ]; then
    echo "ansible-builder accepts execution-environment.yml"
  else
    echo "ansible-builder rejects execution-environment.yml:" >&2
    cat "$SCRATCH/ee.log" >&2
    status=1
  fi
  return $status
}

timed "galaxy build + install + ansible-doc" check
