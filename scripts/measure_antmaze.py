"""Measure the steered Ant expert: success per maze from D4RL's evaluation start to its evaluation goal.

    nice -n 10 .venv/bin/python scripts/measure_antmaze.py --episodes 20 [--mazes umaze medium large]
        [--noise 0 0.2] [--behavior-dir ../shared/data] [--json results/antmaze_controller.json]

For each maze and action-noise level (0 = deterministic; 0.2 = D4RL's data-collection noise, then clip)
it runs ``--episodes`` episodes (reset seeds 0..n-1) in the antmaze suite's evaluation environment
(fixed start and goal cells, the environment's +-1 m position noise) for at most ``--steps`` steps
(default 1000, the dataset episode length) and prints the success rate within that limit and within the
suite's evaluation limit (700 steps for umaze), the flips (upside-down torso: unrecoverable), the mean
steps to the goal, and the simulation speed.

    .venv/bin/python scripts/measure_antmaze.py --run-algo iql --run-steps 100000 --run-results DIR
        [--run-dataset antmaze-umaze-v2] [--episodes 5]

instead rolls out the last checkpoint of a finished ``offbench run`` (deterministic actions, the suite's
evaluation resets) and prints per episode how far along the planner's cell path the Ant got, whether it
reached the goal, and its final distance: progress that a success rate of 0 does not show.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from offbench import envs
from offbench.data.build import ant_controller as ac
from offbench.data.build.recipes import behavior_dir_or_error
from offbench.data.suites import get_suite

TASKS = {"umaze": "antmaze-umaze-v2", "medium": "antmaze-medium-play-v2", "large": "antmaze-large-play-v2"}


def measure(maze: str, noise: float, episodes: int, steps: int, policy, seed: int = 0) -> dict:
    task = get_suite("antmaze").task(TASKS[maze])
    env = envs.make_env(task.env_id, task.env_kwargs, None)
    u = env.unwrapped
    plain = [[0 if isinstance(c, str) else c for c in row] for row in task.env_kwargs["maze_map"]]
    ctl = ac.SteeredAnt(policy, plain)
    rng = np.random.default_rng(seed)
    reached_at, flips, n_steps = [], 0, 0
    t0 = time.time()
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        ctl.reset()
        data = u.ant_env.data
        hit = None
        for t in range(steps):
            a = ctl.act(data, u.goal)
            if noise > 0:
                a = a + rng.normal(0.0, noise, a.shape)
            _, _, _, _, info = u.step(np.clip(a, -1.0, 1.0))
            n_steps += 1
            if info["success"]:
                hit = t + 1
                break
            if ac.is_flipped(data):
                flips += 1
                break
        reached_at.append(hit)
    secs = time.time() - t0
    env.close()
    ok = [h for h in reached_at if h is not None]
    limit = task.max_episode_steps or steps
    return {"maze": maze, "task": task.name, "noise": noise, "episodes": episodes, "step_limit": steps,
            "success": 100.0 * len(ok) / episodes,
            f"success_within_{limit}": 100.0 * sum(h <= limit for h in ok) / episodes,
            "flips": flips, "mean_steps_to_goal": float(np.mean(ok)) if ok else None,
            "steps_per_second": n_steps / secs, "seconds": secs}


def run_progress(algo: str, dataset: str, steps: int, results: str, episodes: int) -> list[dict]:
    import jax.numpy as jnp

    from offbench.training.offline import Run, RunOptions, prepare

    opts = RunOptions(algo=algo, suite="antmaze", dataset=dataset, steps=steps, eval_episodes=episodes,
                      results=results, progress=False)
    prep = prepare(opts, say=lambda s: None)
    run = Run(prep, say=lambda s: None)
    states, keys = run.init_states()
    tree, _ = run.try_resume({"states": states, "keys": keys})
    if tree is None:
        raise SystemExit(f"no checkpoint of {algo} on {dataset} under {results}")
    env = prep.source.env_factory()()
    u = env.unwrapped
    grid = ac.MazeGrid(prep.source.task.env_kwargs["maze_map"])
    limit = prep.source.max_episode_steps or 1000
    rows = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=run.evaluator.seed_base + ep)   # the evaluation's own resets
        path = grid.path(grid.cell_of(obs["achieved_goal"]), grid.cell_of(u.goal))
        furthest, success, flipped, t = 0, False, False, 0
        for t in range(limit):
            a = np.asarray(run.act_fn(tree["states"], jnp.asarray(run.obs_adapter(obs)[None, None])))[0, 0]
            obs, _, _, _, info = env.step(a)
            cell = grid.cell_of(obs["achieved_goal"])
            if cell in path:
                furthest = max(furthest, path.index(cell))
            success = bool(info["success"])
            flipped = ac.is_flipped(u.ant_env.data)
            if success or flipped:
                break
        row = {"episode": ep, "furthest_cell": furthest, "path_cells": len(path) - 1, "success": success,
               "flipped": flipped, "steps": t + 1,
               "final_distance": float(np.linalg.norm(obs["achieved_goal"] - u.goal))}
        rows.append(row)
        print(f"{algo} episode {ep}: furthest path cell {furthest}/{len(path) - 1}, success {success}, "
              f"flipped {flipped}, steps {t + 1}, final distance {row['final_distance']:.2f} m", flush=True)
    env.close()
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mazes", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.2])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--behavior-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    p.add_argument("--run-algo", default=None, help="roll out a trained run's checkpoint instead")
    p.add_argument("--run-dataset", default="antmaze-umaze-v2")
    p.add_argument("--run-steps", type=int, default=1_000_000, help="--steps the run was made with")
    p.add_argument("--run-results", default="results")
    args = p.parse_args(argv)
    if args.run_algo:
        rows = run_progress(args.run_algo, args.run_dataset, args.run_steps, args.run_results, args.episodes)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    policy = ac.load_expert(behavior_dir_or_error(args.behavior_dir))
    rows = []
    print(f"{'maze':8s} {'noise':>5s} {'episodes':>8s} {'success%':>8s} {'in eval limit%':>14s} {'flips':>5s} "
          f"{'steps to goal':>13s} {'steps/s':>8s}")
    for maze in args.mazes:
        for noise in args.noise:
            r = measure(maze, noise, args.episodes, args.steps, policy, args.seed)
            rows.append(r)
            within = next(v for k, v in r.items() if k.startswith("success_within_"))
            stg = f"{r['mean_steps_to_goal']:.0f}" if r["mean_steps_to_goal"] else "-"
            print(f"{maze:8s} {noise:5.2f} {r['episodes']:8d} {r['success']:8.1f} {within:14.1f} {r['flips']:5d} "
                  f"{stg:>13s} {r['steps_per_second']:8.0f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
