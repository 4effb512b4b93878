"""Fidelity of the MJX evaluation backend: the same policy from the same start states on both backends.

For each task, a behaviour policy from ``../shared/data/policies`` (``offbench-mlp-policy/1``, deterministic
action, clipped to [-1, 1]) runs ``--episodes`` episodes on the host backend (MuJoCo C, the parallel host
evaluator) and on MJX; the check passes when the mean returns differ by at most ``--tolerance`` (2%).
Tasks MJX does not run (AntMaze, Kitchen, Adroit) are listed as host-only.

    python benchmarks/eval_fidelity.py                                   # Hopper/HalfCheetah/Walker2d, 100 episodes
    python benchmarks/eval_fidelity.py --tasks Hopper-v5 --episodes 20 --horizon 300   # a quick CPU check
    python benchmarks/eval_fidelity.py --json fidelity.json              # on a GPU: the full check

Exit status 1 when a task misses the tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from offbench.envs import EnvFactory, ObsAdapter  # noqa: E402
from offbench.evaluation.evaluator import default_workers, make_act_fn  # noqa: E402
from offbench.evaluation.mjx import MjxEvaluator  # noqa: E402
from offbench.evaluation.mjx_tasks import SUPPORTED  # noqa: E402
from offbench.evaluation.vector import ParallelEvaluator  # noqa: E402

POLICIES = {"Hopper-v5": "hopper-tqc", "HalfCheetah-v5": "halfcheetah-tqc", "Walker2d-v5": "walker2d-tqc"}
HOST_ONLY = (
    "AntMaze_*-v4 (the maze's walls and the Ant's contacts; not ported)",
    "FrankaKitchen-v1 (not ported)",
    "AdroitHand*-v1 (not ported)",
)


def policy_dir() -> Path:
    return Path(os.environ.get("OFFBENCH_BEHAVIOR_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def load_policy(name: str):
    """(params, act) of an ``offbench-mlp-policy/1`` file: ``act(params, obs[B, d], key, det) -> actions``,
    the README's forward pass in JAX (normalise, affine + activation but after the last, squash, scale)."""
    z = np.load(policy_dir() / "policies" / f"{name}.npz")
    meta = json.loads(str(z["meta"]))
    n = int(meta["n_layers"])
    params = {k: jnp.asarray(z[k], jnp.float32) for k in z.files if k != "meta" and not k.startswith("log_std")}
    act_fn = jnp.tanh if meta["activation"] == "tanh" else jax.nn.relu

    def act(p, obs, key, deterministic=True):
        h = (obs - p["obs_shift"]) / p["obs_scale"]
        for i in range(n):
            h = h @ p[f"w{i}"] + p[f"b{i}"]
            if i < n - 1:
                h = act_fn(h)
        if meta["squash"] == "tanh":
            h = jnp.tanh(h)
        return jnp.clip(h * p["act_scale"] + p["act_shift"], -1.0, 1.0)

    return params, act


def check(env_id: str, episodes: int, horizon: int | None, workers: int, repeat: bool, seed: int = 0) -> dict:
    params, act = load_policy(POLICIES[env_id])
    states = jax.tree_util.tree_map(lambda x: x[None], params)  # one "seed"
    host = ParallelEvaluator(
        EnvFactory(env_id, {}, horizon),
        ObsAdapter(),
        make_act_fn(act),
        [seed],
        episodes,
        workers=workers,
        width=episodes,
    )
    t0 = time.perf_counter()
    a = host(states)
    host_s = time.perf_counter() - t0
    host.close()
    mjx = MjxEvaluator(env_id, ObsAdapter(), act, [seed], episodes, horizon=horizon)
    t0 = time.perf_counter()
    b = mjx(states)
    mjx_first_s = time.perf_counter() - t0
    mjx_s = None
    if repeat:  # a second, compiled call: the run time without compilation, and the same numbers
        t0 = time.perf_counter()
        b2 = mjx(states)
        mjx_s = time.perf_counter() - t0
        assert np.array_equal(b.returns, b2.returns), "MJX evaluation is not deterministic"
    ra, rb = a.returns.ravel(), b.returns.ravel()
    diff = (rb.mean() - ra.mean()) / abs(ra.mean())
    return {
        "task": env_id,
        "policy": POLICIES[env_id],
        "episodes": episodes,
        "horizon": horizon or 1000,
        "host_mean": float(ra.mean()),
        "host_std": float(ra.std()),
        "mjx_mean": float(rb.mean()),
        "mjx_std": float(rb.std()),
        "rel_diff": float(diff),
        "host_len": float(a.lengths.mean()),
        "mjx_len": float(b.lengths.mean()),
        "host_s": host_s,
        "mjx_compile_and_run_s": mjx_first_s,
        "mjx_s": mjx_s,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(SUPPORTED))
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=None, help="cap episodes at this many steps (default: the env's)")
    ap.add_argument("--workers", type=int, default=default_workers(), help="host evaluation workers")
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--no-repeat", action="store_true", help="one MJX call (compile included): for slow CPUs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    print(
        f"# {platform.node()} jax {jax.__version__} on {jax.default_backend()}; "
        f"{args.episodes} episodes, horizon {args.horizon or 'env'}"
    )
    rows, ok = [], True
    for env_id in args.tasks.split(","):
        r = check(env_id, args.episodes, args.horizon, args.workers, not args.no_repeat)
        r["pass"] = abs(r["rel_diff"]) <= args.tolerance
        ok &= r["pass"]
        rows.append(r)
        print(
            f"{env_id:15s} host {r['host_mean']:9.1f} ± {r['host_std']:7.1f}  mjx {r['mjx_mean']:9.1f} ± "
            f"{r['mjx_std']:7.1f}  diff {100 * r['rel_diff']:+6.2f}%  len {r['host_len']:.0f}/{r['mjx_len']:.0f}  "
            f"{'PASS' if r['pass'] else 'FAIL'}  (host {r['host_s']:.1f}s, mjx "
            + (
                f"{r['mjx_s']:.1f}s + compile {r['mjx_compile_and_run_s'] - r['mjx_s']:.0f}s)"
                if r["mjx_s"]
                else f"{r['mjx_compile_and_run_s']:.0f}s with compile)"
            ),
            flush=True,
        )
    for t in HOST_ONLY:
        print(f"host only: {t}")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": jax.default_backend(), "rows": rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
