"""Fidelity of the MJX evaluation backend: the same policy from the same start states on both backends.

Locomotion: a behaviour policy from ``../shared/data/policies`` (``offbench-mlp-policy/1``, deterministic
action, clipped to [-1, 1]) runs ``--episodes`` episodes on the host backend (MuJoCo C, the parallel host
evaluator) and on MJX; the check passes when the mean returns differ by at most ``--tolerance`` (2%).

AntMaze (``antmaze-umaze-v2``; the suite's evaluation: ``AntMaze_UMaze-v4``, 700 steps, the episode ends within
0.5 m of the goal): the policy is offbench's own BC, fitted here for ``--bc-steps`` on the dataset the run
would use (a rebuilt one where no download exists: build a small one first, e.g. ``offbench data build
antmaze-umaze-v2 --size 20000`` into a temporary ``MINARI_DATASETS_PATH``). The steered Ant expert that
builds the data is not a JAX policy (it reads MuJoCo's contact forces), so it cannot run on MJX. The check
passes when the two success rates agree within their 95% confidence (Newcombe's interval for the difference
of two proportions contains 0). Tasks MJX does not run (Kitchen, Adroit) are listed as host-only.

    python benchmarks/eval_fidelity.py                                   # Hopper/HalfCheetah/Walker2d, 100 episodes
    python benchmarks/eval_fidelity.py --tasks Hopper-v5 --episodes 20 --horizon 300   # a quick CPU check
    python benchmarks/eval_fidelity.py --tasks antmaze-umaze-v2 --episodes 100 --bc-steps 20000
    python benchmarks/eval_fidelity.py --tasks Hopper-v5,HalfCheetah-v5,Walker2d-v5,antmaze-umaze-v2 --json f.json

Exit status 1 when a task misses the tolerance.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

if importlib.util.find_spec("offbench") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from offbench.envs import EnvFactory, ObsAdapter  # noqa: E402
from offbench.evaluation.evaluator import Evaluator, default_workers, make_act_fn  # noqa: E402
from offbench.evaluation.mjx import MjxEvaluator  # noqa: E402
from offbench.evaluation.mjx_tasks import LOCOMOTION  # noqa: E402
from offbench.evaluation.vector import ParallelEvaluator  # noqa: E402

POLICIES = {"Hopper-v5": "hopper-tqc", "HalfCheetah-v5": "halfcheetah-tqc", "Walker2d-v5": "walker2d-tqc"}
ANTMAZE = ("antmaze-umaze-v2",)
HOST_ONLY = ("FrankaKitchen-v1 (not ported)", "AdroitHand*-v1 (not ported)")


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


def host_evaluator(factory, adapter, act, seeds, episodes: int, workers: int):
    """The host backend: serial with 0 workers, else the parallel evaluator (the same numbers either way)."""
    if workers == 0:
        return Evaluator(factory, adapter, make_act_fn(act), seeds, episodes, episodes)
    return ParallelEvaluator(factory, adapter, make_act_fn(act), seeds, episodes, workers=workers, width=episodes)


def check(env_id: str, episodes: int, horizon: int | None, workers: int, repeat: bool, seed: int = 0) -> dict:
    params, act = load_policy(POLICIES[env_id])
    states = jax.tree_util.tree_map(lambda x: x[None], params)  # one "seed"
    host = host_evaluator(EnvFactory(env_id, {}, horizon), ObsAdapter(), act, [seed], episodes, workers)
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


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion k / n."""
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half / (1 + z * z / n), centre + half / (1 + z * z / n)


def newcombe(k1: int, k2: int, n: int) -> tuple[float, float]:
    """The 95% interval of p1 - p2 (Newcombe 1998, method 10: from the two Wilson intervals)."""
    p1, p2 = k1 / n, k2 / n
    (l1, u1), (l2, u2) = wilson(k1, n), wilson(k2, n)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def fit_bc(dataset: str, steps: int, seed: int = 0):
    """offbench's BC (its suite config) trained ``steps`` steps on ``dataset``: (prepared run, states[1 seed])."""
    from offbench.training.offline import Run
    from offbench.training.prepare import RunOptions, prepare

    with tempfile.TemporaryDirectory() as tmp:
        opts = RunOptions("bc", "antmaze", dataset, seed=seed, steps=steps, eval_every=steps, results=tmp)
        opts.progress, opts.eval_backend, opts.eval_workers = False, "host", 0
        prep = prepare(opts, say=lambda m: print("#", m))
        runner = Run(prep, say=lambda m: None)
        states, keys = runner.init_states()
        size = jnp.asarray(prep.size, jnp.int32)
        t0, done = time.perf_counter(), 0
        while done < steps:
            n = min(5000, steps - done)
            fn = runner.chunks(n, states, keys, prep.data, size, start=done)
            states, keys, _ = fn(states, keys, prep.data, size)
            done += n
        jax.block_until_ready(states)
        took = time.perf_counter() - t0
        print(f"# bc on {prep.source.name} ({prep.size} transitions): {steps} steps in {took:.0f} s")
    return prep, states


def check_antmaze(
    name: str, episodes: int, horizon: int | None, workers: int, bc_steps: int, seed: int = 0, mjx: bool = True
) -> dict:
    """Host and MJX success rates of one BC policy from the same starts; ``mjx=False``: the host side only (a CPU
    smoke run: MJX's AntMaze step compiles for 5-17 min on 2 cores), with ``pass`` None."""
    from offbench.evaluation.episodes import env_factory_for

    prep, states = fit_bc(name, bc_steps, seed)
    src = prep.source
    adapter = ObsAdapter(src.obs_keys, prep.obs_mean, prep.obs_std)
    factory = env_factory_for(src)
    steps = horizon or src.max_episode_steps
    if horizon:
        factory = EnvFactory(src.env_id, dict(src.env_kwargs or {}), horizon, None, factory.goal_radius)
    act = prep.agent.act
    host = host_evaluator(factory, adapter, act, [seed], episodes, workers)
    t0 = time.perf_counter()
    a = host(states)
    host_s = time.perf_counter() - t0
    host.close()
    k1 = int(a.successes.sum())
    row = {
        "task": name,
        "policy": f"bc {bc_steps} steps on {src.name} ({src.label})",
        "episodes": episodes,
        "horizon": steps,
        "host_success": k1 / episodes,
        "host_ci": wilson(k1, episodes),
        "host_len": float(a.lengths.mean()),
        "host_s": host_s,
        "pass": None,
    }
    if not mjx:
        return row
    ev = MjxEvaluator(src.env_id, adapter, act, [seed], episodes, horizon=steps, env_factory=factory)
    t0 = time.perf_counter()
    b = ev(states)
    mjx_s = time.perf_counter() - t0
    k2 = int(b.successes.sum())
    lo, hi = newcombe(k2, k1, episodes)
    row.update(
        mjx_success=k2 / episodes,
        mjx_ci=wilson(k2, episodes),
        diff_ci=(lo, hi),
        mjx_len=float(b.lengths.mean()),
        mjx_compile_and_run_s=mjx_s,
    )
    row["pass"] = lo <= 0.0 <= hi
    return row


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(LOCOMOTION), help=f"of {', '.join(LOCOMOTION + ANTMAZE)}")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=None, help="cap episodes at this many steps (default: the env's)")
    ap.add_argument("--workers", type=int, default=default_workers(), help="host evaluation workers")
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--no-repeat", action="store_true", help="one MJX call (compile included): for slow CPUs")
    ap.add_argument("--bc-steps", type=int, default=20000, help="AntMaze: BC training steps for the policy")
    ap.add_argument("--json", default=None)
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    print(
        f"# {platform.node()} jax {jax.__version__} on {jax.default_backend()}; "
        f"{args.episodes} episodes, horizon {args.horizon or 'env'}"
    )
    rows, ok = [], True
    for env_id in args.tasks.split(","):
        if env_id in ANTMAZE:
            r = check_antmaze(env_id, args.episodes, args.horizon, args.workers, args.bc_steps)
            ok &= r["pass"]
            rows.append(r)
            (hl, hh), (ml, mh), (dl, dh) = r["host_ci"], r["mjx_ci"], r["diff_ci"]
            print(
                f"{env_id:15s} success host {100 * r['host_success']:.0f}% [{100 * hl:.0f}, {100 * hh:.0f}]  mjx "
                f"{100 * r['mjx_success']:.0f}% [{100 * ml:.0f}, {100 * mh:.0f}]  difference 95% CI "
                f"[{100 * dl:+.0f}, {100 * dh:+.0f}]  len {r['host_len']:.0f}/{r['mjx_len']:.0f}  "
                f"{'PASS' if r['pass'] else 'FAIL'}  (host {r['host_s']:.1f}s, mjx {r['mjx_compile_and_run_s']:.0f}s "
                "with compile)",
                flush=True,
            )
            continue
        if env_id not in POLICIES:
            ap.error(f"unknown task {env_id!r}; choose from {', '.join(LOCOMOTION + ANTMAZE)}")
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
