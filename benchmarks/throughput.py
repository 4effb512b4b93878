"""Gradient updates per second of offbench's algorithms on the current device.

Runs exactly the pipeline's compiled program (``make_train_step`` -> ``lax.scan`` over a chunk of steps ->
``vmap`` over seeds -> ``jit``) on a synthetic dataset of the given size that lives on the device, for 1
seed and for N vmapped seeds, and prints compile time separately from steady-state throughput.

    python benchmarks/throughput.py                       # all algorithms, 1 and 10 seeds
    python benchmarks/throughput.py --algos iql --seeds 1,10 --chunk 5000 --repeats 3
    python benchmarks/throughput.py --algos iql --seeds 1 --reference   # + JAX-CORL-structured IQL, same run

Numbers are only comparable within one invocation (same machine, same load): report ratios from one run,
and absolute times only from a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from offbench import registry  # noqa: E402
from offbench.config import resolve  # noqa: E402
from offbench.training.step import SAMPLED_DROP, make_train_chunk, make_train_step  # noqa: E402


def synthetic_dataset(n: int, obs_dim: int, act_dim: int, episode_len: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ends = np.zeros(n, bool)
    ends[episode_len - 1::episode_len] = True
    ends[-1] = True
    return {"observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "terminals": np.zeros(n, np.float32), "episode_ends": ends}


def bench(algo_name: str, arrays: dict, seeds: int, chunk: int, repeats: int, suite: str, overrides: dict) -> dict:
    algo = registry.get(algo_name)
    config = resolve(algo.default_config, algo.name, suite, None, overrides)
    data = dict(arrays)
    if algo.preprocess is not None:
        data = algo.preprocess(data, config)
    data = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in data.items() if k not in SAMPLED_DROP}
    spec = registry.Spec(obs_dim=arrays["observations"].shape[1], act_dim=arrays["actions"].shape[1],
                         total_steps=1_000_000)
    agent = algo.make(config, spec)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    states = jax.vmap(agent.init)(keys)  # eager, as the pipeline (see Run.init_states)
    size = jnp.asarray(data["rewards"].shape[0], jnp.int32)
    fn = make_train_chunk(make_train_step(agent.update, int(config["batch_size"])), chunk, n_seeds=seeds)

    t0 = time.perf_counter()
    compiled = fn.lower(states, keys, data, size).compile()
    compile_s = time.perf_counter() - t0

    states, keys, m = compiled(states, keys, data, size)  # warm-up
    jax.block_until_ready(m)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        states, keys, m = compiled(states, keys, data, size)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    best = min(times)
    finite = all(bool(np.all(np.isfinite(np.asarray(v)))) for v in m.values())
    return {"algo": algo_name, "seeds": seeds, "compile_s": compile_s, "chunk": chunk, "best_s": best,
            "median_s": float(np.median(times)), "updates_per_s_per_seed": chunk / best,
            "updates_per_s_total": seeds * chunk / best, "finite": finite,
            "projected_1M_s": 1_000_000 / (chunk / best)}


def bench_reference(arrays: dict, chunk: int, repeats: int, batch_size: int = 256) -> dict:
    """JAX-CORL-structured IQL (benchmarks/reference_iql.py): Python loop over jitted 8-update calls."""
    from reference_iql import make_reference

    data = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in arrays.items() if k not in SAMPLED_DROP}
    init, update_n, per_call = make_reference(arrays["observations"].shape[1], arrays["actions"].shape[1], batch_size)
    state, key = init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    state = update_n(state, data, key)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    calls = max(1, chunk // per_call)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            key, sub = jax.random.split(key)
            state = update_n(state, data, sub)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    best = min(times)
    ups = calls * per_call / best
    return {"algo": "iql(JAX-CORL-structured reference)", "seeds": 1, "compile_s": compile_s, "chunk": calls * per_call,
            "best_s": best, "median_s": float(np.median(times)), "updates_per_s_per_seed": ups,
            "updates_per_s_total": ups, "finite": True, "projected_1M_s": 1_000_000 / ups}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default="all", help="comma-separated names, or 'all'")
    ap.add_argument("--seeds", default="1,10", help="comma-separated seed counts (vmapped)")
    ap.add_argument("--chunk", type=int, default=1000, help="gradient steps per compiled call (lax.scan length)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls after one warm-up call")
    ap.add_argument("--dataset-size", type=int, default=1_000_000)
    ap.add_argument("--obs-dim", type=int, default=17)
    ap.add_argument("--act-dim", type=int, default=6)
    ap.add_argument("--suite", default="locomotion", help="whose config section to use")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--reference", action="store_true",
                    help="also time a JAX-CORL-structured IQL (benchmarks/reference_iql.py) in the same run")
    args = ap.parse_args(argv)

    from offbench.config import parse_overrides
    overrides = parse_overrides(args.overrides)
    names = registry.names() if args.algos == "all" else args.algos.split(",")
    seed_counts = [int(s) for s in args.seeds.split(",")]
    arrays = synthetic_dataset(args.dataset_size, args.obs_dim, args.act_dim)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind} | jax {jax.__version__} | python {platform.python_version()} | "
          f"dataset {args.dataset_size} x obs {args.obs_dim} act {args.act_dim} | chunk {args.chunk} | "
          f"repeats {args.repeats}", flush=True)
    print(f"{'algo':12s} {'seeds':>5s} {'compile s':>10s} {'upd/s/seed':>11s} {'upd/s total':>12s} "
          f"{'1M upd (s)':>11s}  vs 1 seed", flush=True)
    rows = []
    for name in names:
        base = None
        for n in seed_counts:
            r = bench(name, arrays, n, args.chunk, args.repeats, args.suite, overrides)
            rows.append(r)
            if base is None:
                base = r["updates_per_s_total"]
            flag = "" if r["finite"] else "  NON-FINITE METRICS"
            print(f"{name:12s} {n:5d} {r['compile_s']:10.2f} {r['updates_per_s_per_seed']:11.1f} "
                  f"{r['updates_per_s_total']:12.1f} {r['projected_1M_s']:11.1f}  x{r['updates_per_s_total'] / base:.2f} "
                  f"total{flag}", flush=True)
    if args.reference:
        ref = bench_reference(arrays, args.chunk, args.repeats)
        rows.append(ref)
        print(f"{'iql-ref':12s} {1:5d} {ref['compile_s']:10.2f} {ref['updates_per_s_per_seed']:11.1f} "
              f"{ref['updates_per_s_total']:12.1f} {ref['projected_1M_s']:11.1f}  (JAX-CORL-structured IQL, "
              f"Python loop of jitted 8-update calls)", flush=True)
        ours = next((r for r in rows if r["algo"] == "iql" and r["seeds"] == 1), None)
        if ours:
            print(f"offbench iql / reference, 1 seed: x{ours['updates_per_s_per_seed'] / ref['updates_per_s_per_seed']:.2f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(dev.device_kind), "platform": dev.platform, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
