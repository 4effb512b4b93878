#!/usr/bin/env bash
# The GPU check rehearsed on this CPU machine exactly as it will run there (issue 27; .ci/run runs it):
# a fresh Python 3.12 venv holding only the GPU image's own packages (JAX, flax, optax, h5py, pandas, scipy,
# matplotlib), benchmarks/gpu/prepare.sh's wheels installed from .whl/ with --no-index --no-deps, then
# `check.sh --smoke` (every stage at tiny sizes). Anchor checkouts are optional here: without a network to clone
# them (ANCHOR_GIT unset), the Unifloral ratio is left out of the smoke and said so.
#
#   bash benchmarks/gpu/rehearse.sh          # PY312=/path/to/python3.12 to choose the interpreter
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
if [[ -z "${PY312:-}" ]]; then  # a Python 3.12 that runs (a pyenv shim may name one that is not selected)
  for c in python3.12 $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python 2>/dev/null); do
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then PY312="$c"; break; fi
  done
fi
[[ -n "${PY312:-}" ]] || { echo "rehearse: no Python 3.12 (the GPU image's); set PY312" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
t0=$(date +%s)
"$PY312" -m venv "$TMP/gpu312"
# the image's packages (JAX 0.11 is not on PyPI yet: the newest, the version offbench's tests use)
"$TMP/gpu312/bin/pip" install -q --disable-pip-version-check jax==0.10.2 flax==0.12.8 optax==0.2.8 h5py 'pandas<3' \
  scipy matplotlib
ANCHORS_OPTIONAL=1 bash benchmarks/gpu/prepare.sh
PYTHON="$TMP/gpu312/bin/python" SITE="$TMP/site" OUT="$TMP/out" JAX_PLATFORMS=cpu \
  bash benchmarks/gpu/check.sh --smoke --workers 1
"$TMP/gpu312/bin/python" - "$TMP/out/check.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
failed = [k for k, v in res.items() if isinstance(v, dict) and v.get("error")]
need = {"throughput", "eval_speed", "fidelity", "eval_share"}
missing = need - set(res)
if failed or missing:
    sys.exit(f"rehearse: stages failed {failed}, missing {sorted(missing)}")
print("rehearse: every stage ran:", ", ".join(sorted(need)))
PY
echo "rehearse: passed in $(( $(date +%s) - t0 )) s"
