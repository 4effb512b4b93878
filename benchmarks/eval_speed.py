"""Evaluation speed per backend and task, and the share of a run's wall time spent evaluating.

For each task it times one evaluation of ``--seeds`` x ``--episodes`` episodes of a freshly initialised
agent's deterministic policy (the pipeline's own ``make_act_fn`` / MJX rollout) on each backend:

* ``host-serial``: the reference evaluator, one process (``--eval-workers 0``);
* ``host-parallel``: the worker pool (``--eval-workers N``; workers started before timing), with its
  breakdown: round trips, seconds in ``act``, sending, stepping this process's share, waiting for replies;
* ``mjx``: on the device (supported tasks only; compile time reported apart).

It reports episodes/s and environment steps/s, and, from the training throughput of the same agent
(the pipeline's compiled chunk on a synthetic dataset, as ``benchmarks/throughput.py``), the fraction of a
full run's wall time spent evaluating under the suite's schedule (``--steps`` / eval_every evaluations of
the suite's episodes, each as long as the episodes measured here).

    python benchmarks/eval_speed.py                                     # Hopper + AntMaze umaze, host backends
    python benchmarks/eval_speed.py --tasks Hopper-v5 --backends host-serial,host-parallel,mjx --horizon 200
    python benchmarks/eval_speed.py --tasks antmaze-umaze-v2 --seeds 10 --episodes 100   # the GPU goal (< 10 s)

Compare numbers from one invocation only (same machine, same load); the load average is printed at the
start and end, and ``--repeat N`` times each backend N times, interleaved, and reports the median.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

if importlib.util.find_spec("offbench") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from offbench import registry  # noqa: E402
from offbench.config import resolve  # noqa: E402
from offbench.data.suites import SUITES  # noqa: E402
from offbench.envs import EnvFactory, ObsAdapter  # noqa: E402
from offbench.evaluation.episodes import env_factory_for  # noqa: E402
from offbench.evaluation.evaluator import Evaluator, default_workers, make_act_fn  # noqa: E402
from offbench.evaluation.mjx_tasks import supported  # noqa: E402
from offbench.evaluation.vector import ParallelEvaluator  # noqa: E402


def task_of(name: str):
    """(suite, Task) of a D4RL dataset name, or (None, None) for a bare Gymnasium id."""
    for suite in SUITES.values():
        for t in suite.tasks:
            if t.name == name:
                return suite, t
    return None, None


def factory_of(name: str, horizon: int | None):
    suite, task = task_of(name)
    if task is None:
        return name, EnvFactory(name, {}, horizon), None, suite
    src = type(
        "Source",
        (),
        {
            "env_id": task.env_id,
            "env_kwargs": task.env_kwargs,
            "task": task,
            "max_episode_steps": horizon or task.max_episode_steps,
            "eval_env_spec": None,
        },
    )()
    return task.env_id, env_factory_for(src), task.obs_keys, suite


def make_agent(algo: str, env, obs_keys, suite_name: str | None, seeds: int):
    obs_dim = ObsAdapter(obs_keys)(env.reset(seed=0)[0]).shape[0]
    act_dim = env.action_space.shape[0]
    a = registry.get(algo)
    config = resolve(a.default_config, a.name, suite_name, None, {})
    agent = a.make(config, registry.Spec(obs_dim=obs_dim, act_dim=act_dim, total_steps=1_000_000))
    states = jax.vmap(agent.init)(jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)]))
    return agent, states, config, obs_dim, act_dim


def time_eval(ev, states) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = ev(states)
    return time.perf_counter() - t0, res


def train_updates_per_s(agent, config, states, obs_dim, act_dim, chunk: int, n: int = 100_000) -> float:
    """Updates/s per seed of the pipeline's compiled chunk (``ChunkCache``) on a synthetic device dataset."""
    from offbench.training.step import ChunkCache, make_train_step

    rng = np.random.default_rng(0)
    data = {
        "observations": rng.normal(size=(n, obs_dim)),
        "actions": rng.uniform(-1, 1, (n, act_dim)),
        "rewards": rng.normal(size=n),
        "next_observations": rng.normal(size=(n, obs_dim)),
        "terminals": np.zeros(n),
    }
    data = {k: jnp.asarray(v, jnp.float32) for k, v in data.items()}
    states = jax.tree_util.tree_map(jnp.copy, states)  # the chunk may donate its inputs (GPU)
    n_seeds = jax.tree_util.tree_leaves(states)[0].shape[0]
    keys = jnp.stack([jax.random.PRNGKey(100 + s) for s in range(n_seeds)])
    size = jnp.asarray(n, jnp.int32)
    cache = ChunkCache(
        make_train_step(agent.update, int(config["batch_size"]), getattr(agent, "steps_per_update", 1)), n_seeds=n_seeds
    )
    fn = cache(chunk, states, keys, data, size)
    states, keys, m = fn(states, keys, data, size)  # warm-up
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    states, keys, m = fn(states, keys, data, size)
    jax.block_until_ready(m)
    return chunk / (time.perf_counter() - t0)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tasks",
        default="hopper-medium-v2,antmaze-umaze-v2",
        help="D4RL names (their suite's evaluation env) or Gymnasium ids",
    )
    ap.add_argument("--backends", default="host-serial,host-parallel", help="host-serial,host-parallel,mjx")
    ap.add_argument("--algo", default="iql")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=None, help="cap episodes at this many steps (CPU runs)")
    ap.add_argument("--workers", type=int, default=max(1, default_workers()), help="host-parallel's workers")
    ap.add_argument("--repeat", type=int, default=1, help="time each backend this many times (median)")
    ap.add_argument("--width", type=int, default=None, help="episodes of a seed stepped together (default 10)")
    ap.add_argument("--steps", type=int, default=1_000_000, help="run length for the evaluation share")
    ap.add_argument("--train-chunk", type=int, default=0, help="measure training with this chunk (0: skip)")
    ap.add_argument("--json", default=None)
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    print(
        f"# {platform.node()} jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} cpus; "
        f"{args.seeds} seeds x {args.episodes} episodes, horizon {args.horizon or 'env'}, workers {args.workers}; "
        f"load average (1 min) {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for name in args.tasks.split(","):
        env_id, factory, obs_keys, suite = factory_of(name, args.horizon)
        env = factory()
        agent, states, config, obs_dim, act_dim = make_agent(args.algo, env, obs_keys, suite and suite.name, args.seeds)
        env.close()
        act_fn = make_act_fn(agent.act)
        adapter = ObsAdapter(obs_keys)
        seeds = list(range(args.seeds))
        ups = (
            train_updates_per_s(agent, config, states, obs_dim, act_dim, args.train_chunk) if args.train_chunk else None
        )
        evs, extras = {}, {}
        for backend in args.backends.split(","):
            if backend == "mjx" and not supported(env_id):
                print(f"{name:18s} {backend:13s} not supported (host only)")
                continue
            extras[backend] = {}
            if backend == "host-serial":
                ev = Evaluator(factory, adapter, act_fn, seeds, args.episodes, args.width)
                ev._ensure_envs()
            elif backend == "host-parallel":
                ev = ParallelEvaluator(factory, adapter, act_fn, seeds, args.episodes, args.workers, args.width)
                ev.worker_modules()  # workers started (and their imports done) before timing
            else:
                from offbench.evaluation.mjx import MjxEvaluator

                ev = MjxEvaluator(
                    env_id, adapter, agent.act, seeds, args.episodes, horizon=args.horizon, env_factory=factory
                )
                extras[backend]["compile_and_first_s"], _ = time_eval(ev, states)
            # warm the act compile for the host backends with a throwaway call on the right shape
            if backend.startswith("host"):
                jax.block_until_ready(act_fn(states, jnp.zeros((args.seeds, ev.width, obs_dim))))
            evs[backend] = ev
        times: dict = {b: [] for b in evs}
        results: dict = {}
        for _ in range(args.repeat):  # interleaved, so that a change of load hits every backend alike
            for backend, ev in evs.items():
                dt, results[backend] = time_eval(ev, states)
                times[backend].append(dt)
                if backend == "host-parallel":
                    extras[backend].setdefault("timings", []).append(dict(ev.timings))
        for backend, ev in evs.items():
            ev.close()
            dt, res = float(np.median(times[backend])), results[backend]
            steps = int(res.lengths.sum())
            row = {
                "task": name,
                "env_id": env_id,
                "backend": backend,
                "seconds": dt,
                "seconds_all": times[backend],
                "episodes": res.lengths.size,
                "episodes_per_s": res.lengths.size / dt,
                "env_steps_per_s": steps / dt,
                "mean_length": float(res.lengths.mean()),
                **extras[backend],
            }
            if ups and suite is not None:
                n_evals = args.steps // suite.eval_every
                eval_s = n_evals * dt * suite.eval_episodes / args.episodes  # episodes as long as measured here
                train_s = args.steps / ups
                row.update(
                    train_updates_per_s=ups,
                    projected_eval_s=eval_s,
                    projected_train_s=train_s,
                    eval_fraction=eval_s / (eval_s + train_s),
                )
            rows.append(row)
            frac = (
                f"  eval share of a {args.steps} step run {100 * row['eval_fraction']:.0f}%"
                if "eval_fraction" in row
                else ""
            )
            spread = f", {min(times[backend]):.1f}-{max(times[backend]):.1f}s" if args.repeat > 1 else ""
            print(
                f"{name:18s} {backend:13s} {row['episodes_per_s']:8.2f} episodes/s {row['env_steps_per_s']:9.0f} "
                f"steps/s  ({dt:.1f}s{spread}, mean length {row['mean_length']:.0f}){frac}",
                flush=True,
            )
            if backend == "host-parallel":
                t = row["timings"][-1]
                print(
                    f"{'':32s}{ev.workers} worker(s) + this process: {t['round_trips']} round trips; "
                    f"act {t.get('act_s', 0):.1f}s, send {t['send_s']:.1f}s, "
                    f"own share {t.get('local_s', 0):.1f}s, waiting {t['wait_s']:.1f}s",
                    flush=True,
                )
    print(f"# load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"backend": jax.default_backend(), "load_end": os.getloadavg(), "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
