"""Gradient updates per second of offbench's algorithms against other projects' IQL code, measured fairly.

Every contestant is built and compiled once (compile time reported on its own), warmed up with one call,
then timed in *rotated, interleaved slices*: ``--rounds`` rounds, each running every contestant for about
``--slice`` seconds, the order rotated by one each round, so a change of load on a shared machine falls on
all contestants alike. Each slice records wall time, the process's CPU time and the 1-minute load average.
Reported: the median updates/s per seed and in total with their range over the rounds, and each ratio as
the median [range] of the per-round ratios (slices of one round are adjacent in time).

offbench's contestants run exactly the pipeline's compiled program (``make_train_step`` -> ``lax.scan``
over ``--chunk`` steps -> ``vmap`` over seeds -> ``jit``, compiled ahead of time by ``ChunkCache``) on a
synthetic, device-resident dataset. The anchors (benchmarks/anchors/) run Unifloral's, JAX-CORL's and the
original IQL implementation's own files from checkouts you provide (``--anchor-src`` / $OFFBENCH_ANCHOR_SRC /
``.anchors/``; ``bash benchmarks/gpu/anchors.sh`` fetches them), each in its own loop; they train one seed per
process, so their total is their per-seed rate. An anchor whose checkout is absent is skipped with a note.

    python benchmarks/throughput.py                                   # CPU-sized: IQL 1 and 2 seeds + anchors
    python benchmarks/throughput.py --algos td3bc,iql --seeds 1,2 --anchors none
    python benchmarks/throughput.py --algos iql --seeds 1,10 --chunk 5000 --anchors none --slice 20   # a GPU

Compare numbers from one invocation only; absolute times only from a quiet machine or a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

if importlib.util.find_spec("offbench") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from anchors import ANCHORS, AnchorMissing, Contestant, source_dir  # noqa: E402
from anchors import get as get_anchor  # noqa: E402

from offbench import registry  # noqa: E402
from offbench.config import parse_overrides, resolve  # noqa: E402
from offbench.training.step import SAMPLED_DROP, ChunkCache, init_seeds, make_train_step  # noqa: E402


def synthetic_dataset(n: int, obs_dim: int, act_dim: int, episode_len: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ends = np.zeros(n, bool)
    ends[episode_len - 1 :: episode_len] = True
    ends[-1] = True
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "terminals": np.zeros(n, np.float32),
        "episode_ends": ends,
    }


def offbench_contestant(algo_name: str, arrays: dict, seeds: int, chunk: int, suite: str, overrides: dict):
    """The pipeline's program for ``seeds`` vmapped seeds; ``run`` calls chunks of ``chunk`` steps."""
    algo = registry.get(algo_name)
    config = resolve(algo.default_config, algo.name, suite, None, overrides)
    data = dict(arrays)
    if algo.preprocess is not None:
        data = algo.preprocess({**data, "dataset_rewards": data["rewards"].copy()}, config)
    data = {
        k: jnp.asarray(np.asarray(v, np.float32))
        for k, v in data.items()
        if k not in SAMPLED_DROP and k != "dataset_rewards"
    }
    spec = registry.Spec(
        obs_dim=arrays["observations"].shape[1], act_dim=arrays["actions"].shape[1], total_steps=1_000_000
    )
    agent = algo.make(config, spec)
    box = {}
    box["states"], box["keys"] = init_seeds(agent.init, list(range(seeds)))
    size = jnp.asarray(data["rewards"].shape[0], jnp.int32)
    cache = ChunkCache(make_train_step(agent.update, int(config["batch_size"]), agent.steps_per_update), n_seeds=seeds)

    def compile_():
        box["fn"] = cache(chunk, box["states"], box["keys"], data, size)
        return cache.compile_s

    def run(min_updates: int) -> int:
        done = 0
        while done < min_updates:
            box["states"], box["keys"], box["m"] = box["fn"](box["states"], box["keys"], data, size)
            done += chunk
        jax.block_until_ready(box["m"])
        if not all(bool(np.all(np.isfinite(np.asarray(v)))) for v in box["m"].values()):
            raise RuntimeError(f"{algo_name}: non-finite metrics")
        return done

    return Contestant(f"{algo_name} x{seeds}", compile_, run, "offbench pipeline"), seeds


def measure(contestants, slice_s: float, rounds: int) -> list[list[dict]]:
    """``rounds`` rounds of one ~``slice_s`` slice per contestant, order rotated each round."""
    n = len(contestants)
    out = [[] for _ in contestants]
    for r in range(rounds):
        for j in [(r + i) % n for i in range(n)]:
            c, seeds = contestants[j]
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            updates = 0
            while time.perf_counter() - t0 < slice_s:
                updates += c.run(1)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[j].append(
                {
                    "round": r,
                    "updates": updates,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "load1": load,
                    "per_seed": updates / wall,
                    "total": seeds * updates / wall,
                }
            )
        print(f"round {r + 1}/{rounds} done (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    return out


def med_range(xs) -> tuple[float, float, float]:
    xs = np.asarray(xs, float)
    return float(np.median(xs)), float(xs.min()), float(xs.max())


def fmt(m: tuple[float, float, float], p: int = 0) -> str:
    return f"{m[0]:.{p}f} [{m[1]:.{p}f}-{m[2]:.{p}f}]"


def time_startup(algo_name: str, seeds: int, obs_dim: int, act_dim: int, suite: str, overrides: dict) -> dict:
    """Seconds ``init_seeds`` (the pipeline's eager, vmapped initialisation) takes for ``seeds`` seeds."""
    algo = registry.get(algo_name)
    agent = algo.make(resolve(algo.default_config, algo.name, suite, None, overrides), registry.Spec(obs_dim, act_dim))
    t0 = time.perf_counter()
    jax.block_until_ready(init_seeds(agent.init, list(range(seeds))))
    return {"algo": algo_name, "seeds": seeds, "init_seeds_s": time.perf_counter() - t0}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default="iql", help="comma-separated offbench algorithms, or 'all'")
    ap.add_argument("--seeds", default="1,2", help="comma-separated seed counts (vmapped)")
    ap.add_argument("--anchors", default=",".join(ANCHORS), help=f"comma-separated of {', '.join(ANCHORS)}, or 'none'")
    ap.add_argument("--anchor-src", default=None, metavar="NAME=DIR,...", help="the anchors' checkouts")
    ap.add_argument(
        "--anchor-scan", type=int, default=None, help="unifloral: updates per scan call (default its 2500; smoke runs)"
    )
    ap.add_argument("--chunk", type=int, default=1000, help="offbench: gradient steps per compiled call")
    ap.add_argument("--slice", type=float, default=6.0, help="seconds per timed slice")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dataset-size", type=int, default=1_000_000)
    ap.add_argument("--obs-dim", type=int, default=17)
    ap.add_argument("--act-dim", type=int, default=6)
    ap.add_argument("--suite", default="locomotion", help="whose config section to use")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--startup", action="store_true", help="also time seed initialisation")
    ap.add_argument("--json", default=None, help="also write every slice here")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)

    overrides = parse_overrides(args.overrides)
    names = registry.names() if args.algos == "all" else [a for a in args.algos.split(",") if a]
    anchors = [] if args.anchors == "none" else [a for a in args.anchors.split(",") if a]
    seed_counts = [int(s) for s in args.seeds.split(",")]
    arrays = synthetic_dataset(args.dataset_size, args.obs_dim, args.act_dim)
    dev = jax.devices()[0]
    head = (
        f"device {dev.platform} {dev.device_kind} ({os.cpu_count()} CPUs) | jax {jax.__version__} | python "
        f"{platform.python_version()} | dataset {args.dataset_size} x obs {args.obs_dim} act {args.act_dim} | "
        f"chunk {args.chunk} | {args.rounds} rounds x {args.slice:g} s slices | load at start "
        f"{os.getloadavg()[0]:.2f} | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(head, flush=True)

    contestants = [
        offbench_contestant(n, arrays, s, args.chunk, args.suite, overrides) for n in names for s in seed_counts
    ]
    for a in anchors:
        try:
            src = source_dir(a, args.anchor_src)
        except AnchorMissing as e:
            print(f"skipped: {e}", flush=True)
            continue
        extra = {"eval_interval": args.anchor_scan} if a == "unifloral" and args.anchor_scan else {}
        contestants.append((get_anchor(a).make(arrays, src, **extra), 1))
    compile_s = []
    for c, _ in contestants:
        compile_s.append(c.compile())
        c.run(1)  # warm-up call, not timed
    slices = measure(contestants, args.slice, args.rounds)

    print(
        "\n| contestant | seeds | compile s | upd/s per seed, median [range] | upd/s total | CPU/wall | load (1 min) |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    for (c, seeds), comp, sl in zip(contestants, compile_s, slices):
        row = {
            "name": c.name,
            "source": c.source,
            "seeds": seeds,
            "compile_s": comp,
            "slices": sl,
            "per_seed": med_range([s["per_seed"] for s in sl]),
            "total": med_range([s["total"] for s in sl]),
            "cpu_per_wall": med_range([s["cpu_s"] / s["wall_s"] for s in sl]),
            "load1": med_range([s["load1"] for s in sl]),
        }
        rows.append(row)
        print(
            f"| {c.name} | {seeds} | {comp:.1f} | {fmt(row['per_seed'])} | {fmt(row['total'])} | "
            f"{fmt(row['cpu_per_wall'], 2)} | {fmt(row['load1'], 2)} |"
        )

    def ratio(mine, other, measure):
        key = "per_seed" if measure == "per seed" else "total"
        per_round = [x[key] / y[key] for x, y in zip(mine["slices"], other["slices"])]
        return {"ours": mine["name"], "vs": other["name"], "measure": measure, "ratio": med_range(per_round)}

    ours = [r for r in rows if r["source"] == "offbench pipeline"]
    others = [r for r in rows if r["source"] != "offbench pipeline"]
    ratios = []
    for mine in ours:
        for other in others if mine["name"].startswith("iql ") else ():  # the anchors are IQL
            ratios.append(ratio(mine, other, "per seed"))
            if mine["seeds"] > 1:
                ratios.append(ratio(mine, other, "total"))
        one = next((r for r in ours if r["name"] == mine["name"].rsplit(" x", 1)[0] + " x1"), None)
        if one is not None and mine["seeds"] > 1:
            ratios.append(ratio(mine, one, "total"))
    if ratios:
        print("\n| ours | against | measure | ratio, median of per-round ratios [range] |")
        print("|---|---|---|---|")
        for q in ratios:
            print(f"| {q['ours']} | {q['vs']} | {q['measure']} | x{fmt(q['ratio'], 2)} |")
    startup = []
    if args.startup:
        for n in names:
            for s in seed_counts:
                st = time_startup(n, s, args.obs_dim, args.act_dim, args.suite, overrides)
                startup.append(st)
                print(f"startup {n} x{s}: init_seeds {st['init_seeds_s']:.2f} s")
    print(f"\nload at end {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"header": head, "argv": sys.argv[1:], "rows": rows, "ratios": ratios, "startup": startup}, f, indent=1
            )


if __name__ == "__main__":
    main()
