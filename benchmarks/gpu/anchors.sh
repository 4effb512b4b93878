#!/usr/bin/env bash
# Put the anchors' own files (benchmarks/anchors/__init__.py, SOURCES: repository, commit, files) under
# .anchors/<name>/ (git-ignored; a few hundred kB in all). Never committed: offbench contains none of their code.
#
#   bash benchmarks/gpu/anchors.sh                        # git clone from GitHub (needs a network)
#   ANCHOR_GIT="unifloral=/path/to/unifloral/.git,jaxcorl=...,original=..." bash benchmarks/gpu/anchors.sh
#                                                         # from local clones or bare mirrors instead
# An anchor whose files are already there is left alone. Exit status 1 if one could not be obtained.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${ANCHOR_DEST:-$ROOT/.anchors}"
PY="${PYTHON:-python3}"
# name url commit files... : one line per anchor, read from the one place they are defined
lines="$(cd "$ROOT/benchmarks" && "$PY" -c '
from anchors import SOURCES
for n, s in SOURCES.items():
    print(n, s.url, s.commit, *s.files)
')"
declare -A local_git=()
IFS=',' read -ra pairs <<< "${ANCHOR_GIT:-}"
for p in "${pairs[@]}"; do [[ -n "$p" ]] && local_git["${p%%=*}"]="${p#*=}"; done
status=0
while read -r name url commit files; do
  out="$DEST/$name"
  have=1
  for f in $files; do [[ -f "$out/$f" ]] || have=0; done
  if [[ $have == 1 ]]; then echo "anchor $name: present in $out"; continue; fi
  mkdir -p "$out"
  gitdir="${local_git[$name]:-}"
  tmp=""
  if [[ -z "$gitdir" ]]; then
    tmp="$(mktemp -d)"
    if ! git clone -q --no-checkout --filter=blob:none "$url" "$tmp/repo" 2>/dev/null; then
      echo "anchor $name: cannot clone $url (no network?); set ANCHOR_GIT=$name=/path/to/a/clone" >&2
      rm -rf "$tmp"; status=1; continue
    fi
    gitdir="$tmp/repo/.git"
  fi
  [[ -d "$gitdir/objects" ]] || { [[ -d "$gitdir/.git" ]] && gitdir="$gitdir/.git"; }
  # shellcheck disable=SC2086
  if git --git-dir="$gitdir" archive "$commit" -- $files | tar -x -C "$out"; then
    echo "anchor $name: $url @ ${commit:0:7} -> $out ($files)"
  else
    echo "anchor $name: commit $commit not in $gitdir" >&2; status=1
  fi
  [[ -n "$tmp" ]] && rm -rf "$tmp"
done <<< "$lines"
exit $status
