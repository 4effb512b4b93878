#!/usr/bin/env bash
# Step 2 of the GPU check (docs/speed.md, "On a GPU"): run on the GPU machine, in the repository root, with .whl and
# .anchors carried (benchmarks/gpu/prepare.sh made them) and $OUT set to the folder whose files come back.
#
#   bash benchmarks/gpu/check.sh            # the measurements (<= 8 min on an H100): $OUT/check.json (+ parts)
#   bash benchmarks/gpu/check.sh --smoke    # the same end to end at tiny sizes (the CPU rehearsal)
# Other arguments go to benchmarks/gpu/check.py (e.g. --stages fidelity, --dry-run).
#
# Installs nothing from an index: only .whl/*.whl, with --no-deps, into $SITE (default /tmp/offbench-site), on top of
# the machine's own Python (JAX, flax, optax, h5py, pandas, scipy, matplotlib). Exit status: check.py's (1 when a
# stage failed; its error is in check.json), or 2 when the kit is incomplete.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
SITE="${SITE:-/tmp/offbench-site}"
export OUT="${OUT:-$ROOT/.gpu-out}"
mkdir -p "$OUT"
t0=$(date +%s)
ls .whl/*.whl >/dev/null 2>&1 || { echo "check: no .whl/*.whl here; run benchmarks/gpu/prepare.sh and carry .whl" >&2; exit 2; }
[[ -d .anchors ]] || echo "check: no .anchors/ carried: the Unifloral ratio will be missing" >&2
rm -rf "$SITE"
"$PY" -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl 2>&1 | grep -v -i "warning: .*location" >&2
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export OFFBENCH_BEHAVIOR_DIR="${OFFBENCH_BEHAVIOR_DIR:-$ROOT/.whl/behavior}"
export MPLBACKEND=Agg
echo "# installed $(ls .whl/*.whl | wc -l) wheels into $SITE in $(( $(date +%s) - t0 )) s; $("$PY" -V); out: $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  | tee "$OUT/nvidia-smi.txt"
# every import the check needs, before any measurement: a missing package is one line, not a traceback at minute 5.
# Without the core (JAX, offbench's training) nothing can run: exit 2. Without the rest, the stages that need it
# fail on their own (recorded in check.json) and the others still measure.
"$PY" - <<'PY' || exit 2
import importlib, sys
def missing(mods):
    out = []
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception as e:
            out.append(f"{m} ({type(e).__name__}: {e})")
    return out
core = missing(("jax", "flax", "optax", "numpy", "yaml", "click", "tqdm", "offbench.training.step", "offbench.registry"))
rest = missing(("h5py", "scipy", "pandas", "gymnasium", "gymnasium_robotics", "mujoco", "mujoco.mjx", "minari",
                "threadpoolctl", "offbench.evaluation.mjx", "offbench.evaluation.vector", "offbench.cli.data"))
for m in rest:
    print(f"check: cannot import {m}: the stages needing it will fail; add it to benchmarks/gpu/wheels.txt", file=sys.stderr)
if core:
    sys.exit("check: cannot import " + "; ".join(core) + ": nothing can run; see benchmarks/gpu/wheels.txt")
PY
"$PY" benchmarks/gpu/check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/check.log"
rc=${PIPESTATUS[0]}
echo "# check.sh: $(( $(date +%s) - t0 )) s in all, exit $rc; results in $OUT"
exit "$rc"
