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

    .venv/bin/python scripts/measure_antmaze.py --data antmaze-umaze-v2

prints the data-card figures of a local (rebuilt) AntMaze dataset: rewarded steps, episodes reaching the
evaluation goal, flipped-Ant steps, and the discounted return-to-go (rewards - 1, gamma 0.99, terminal
where rewarded, the suite's convention) of upright and of flipped states: what the data tells a value
function about flips.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from offbench import envs
from offbench.data.suites import get_suite
from offbench.recipes import ant_controller as ac
from offbench.recipes.recipes import behavior_dir_or_error

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
    return {
        "maze": maze,
        "task": task.name,
        "noise": noise,
        "episodes": episodes,
        "step_limit": steps,
        "success": 100.0 * len(ok) / episodes,
        f"success_within_{limit}": 100.0 * sum(h <= limit for h in ok) / episodes,
        "flips": flips,
        "mean_steps_to_goal": float(np.mean(ok)) if ok else None,
        "steps_per_second": n_steps / secs,
        "seconds": secs,
    }


def run_progress(
    algo: str, dataset: str, steps: int, results: str, episodes: int, seeds: int = 1, eval_every: int = 5000
) -> list[dict]:
    import jax.numpy as jnp

    from offbench.training.offline import Run, resume
    from offbench.training.prepare import RunOptions, prepare

    opts = RunOptions(
        algo=algo,
        suite="antmaze",
        dataset=dataset,
        steps=steps,
        eval_episodes=episodes,
        results=results,
        progress=False,
        seeds=seeds,
        eval_every=eval_every,
    )
    prep = prepare(opts, say=lambda s: None)
    run = Run(prep, say=lambda s: None)
    states, keys = run.init_states()
    tree, _, _ = resume(run, {"states": states, "keys": keys})
    if tree is None:
        raise SystemExit(f"no checkpoint of {algo} on {dataset} under {results}")
    from offbench.evaluation.episodes import env_factory_for, episode_success, eval_reset_seed

    env = env_factory_for(prep.source)()  # the evaluation's own environment: ends at the goal, D4RL's 0.5 m
    u = env.unwrapped
    grid = ac.MazeGrid(prep.source.task.env_kwargs["maze_map"])
    limit = prep.source.max_episode_steps or 1000
    rows = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=eval_reset_seed(run.seeds[0], ep))  # the first seed's evaluation resets
        path = grid.path(grid.cell_of(obs["achieved_goal"]), grid.cell_of(u.goal))
        furthest, success, flipped, t = 0, False, False, 0
        for t in range(limit):  # noqa: B007 (t is read after the loop)
            x = np.repeat(run.obs_adapter(obs)[None, None], len(run.seeds), axis=0)  # one row per seed
            a = np.asarray(run.act_fn(tree["states"], jnp.asarray(x)))[0, 0]  # the first seed's action
            obs, _, terminated, truncated, info = env.step(a)
            cell = grid.cell_of(obs["achieved_goal"])
            if cell in path:
                furthest = max(furthest, path.index(cell))
            success = episode_success(info)
            flipped = bool(ac.is_flipped(u.ant_env.data))
            if success or flipped or terminated or truncated:
                break
        row = {
            "episode": ep,
            "furthest_cell": furthest,
            "path_cells": len(path) - 1,
            "success": success,
            "flipped": flipped,
            "steps": t + 1,
            "final_distance": float(np.linalg.norm(obs["achieved_goal"] - u.goal)),
        }
        rows.append(row)
        print(
            f"{algo} episode {ep}: furthest path cell {furthest}/{len(path) - 1}, success {success}, "
            f"flipped {flipped}, steps {t + 1}, final distance {row['final_distance']:.2f} m",
            flush=True,
        )
    env.close()
    return rows


def data_figures(dataset: str, gamma: float = 0.99) -> dict:
    import minari

    from offbench.data.tasks import ANTMAZE_GOAL_RADIUS, eval_goal_xy

    task = get_suite("antmaze").task(dataset)
    goal = np.asarray(eval_goal_xy(task))
    n = rewarded = flipped_steps = reach = 0
    eps = 0
    rtg_up, rtg_flip = [], []
    for ep in minari.load_dataset(task.rebuilt_id).iterate_episodes():
        xy = ep.observations["achieved_goal"][1:]
        r = np.asarray(ep.rewards)
        assert np.array_equal(r, np.linalg.norm(xy - goal, axis=-1) <= ANTMAZE_GOAL_RADIUS)
        quat = ep.observations["observation"][:-1, 1:5]  # torso (w, x, y, z) of each step's state
        flip = 1 - 2 * (quat[:, 1] ** 2 + quat[:, 2] ** 2) < 0
        g = np.zeros(len(r))  # return-to-go, bootstrapping 0 at a cut
        acc = 0.0
        for t in range(len(r) - 1, -1, -1):
            acc = (r[t] - 1.0) + (0.0 if ep.terminations[t] else gamma * acc)
            g[t] = acc
        rtg_up.append(g[~flip]), rtg_flip.append(g[flip])
        n, eps = n + len(r), eps + 1
        rewarded += int(r.sum())
        flipped_steps += int(flip.sum())
        reach += int(r.any())
    up, fl = np.concatenate(rtg_up), np.concatenate(rtg_flip)
    return {
        "dataset": dataset,
        "transitions": n,
        "episodes": eps,
        "rewarded_step_fraction": rewarded / n,
        "eval_goal_episode_fraction": reach / eps,
        "flipped_step_fraction": flipped_steps / n,
        "return_to_go_upright_mean": float(up.mean()) if len(up) else None,
        "return_to_go_flipped_mean": float(fl.mean()) if len(fl) else None,
        "return_to_go_flipped_max": float(fl.max()) if len(fl) else None,
    }


def run_values(
    dataset: str, steps: int, results: str, seeds: int, eval_every: int, eval_episodes: int, gamma: float = 0.99
) -> dict:
    """IQL's learnt V(s) on the dataset's states beside their discounted return-to-go, by path cell from the
    start (0) to the goal, upright vs flipped: whether the value has propagated along the maze, and whether
    it marks flips as dead ends."""
    import jax

    from offbench.training.kit.networks import ValueNet
    from offbench.training.offline import Run, resume
    from offbench.training.prepare import RunOptions, prepare

    opts = RunOptions(
        algo="iql",
        suite="antmaze",
        dataset=dataset,
        steps=steps,
        eval_episodes=eval_episodes,
        results=results,
        progress=False,
        seeds=seeds,
        eval_every=eval_every,
    )
    prep = prepare(opts, say=lambda s: None)
    run = Run(prep, say=lambda s: None)
    states, keys = run.init_states()
    tree, _, _ = resume(run, {"states": states, "keys": keys})
    params = jax.tree_util.tree_map(lambda x: x[0], tree["states"]["value"].params)  # the first seed
    value = ValueNet(tuple(prep.config["hidden_dims"]))
    ds = prep.source.dataset
    obs = ds.observations if prep.obs_mean is None else (ds.observations - prep.obs_mean) / prep.obs_std
    v = np.concatenate([np.asarray(value.apply(params, obs[i : i + 65536])) for i in range(0, len(obs), 65536)])
    r = ds.rewards - 1.0  # the suite's transform
    g, acc = np.zeros(len(r)), 0.0
    for t in range(len(r) - 1, -1, -1):
        if ds.episode_ends[t] and not ds.terminals[t]:
            acc = 0.0  # a cut: bootstrap 0 (an underestimate near cuts)
        acc = r[t] + (0.0 if ds.terminals[t] else gamma * acc)
        g[t] = acc
    task = prep.source.task
    grid = ac.MazeGrid(task.env_kwargs["maze_map"])
    path = grid.path(
        *[
            next((i, j) for i, row in enumerate(task.env_kwargs["maze_map"]) for j, c in enumerate(row) if c == m)
            for m in ("r", "g")
        ]
    )
    cell = np.array([path.index(grid.cell_of(xy)) if grid.cell_of(xy) in path else -1 for xy in ds.observations[:, :2]])
    q = ds.observations[:, 3:7]  # torso quaternion (29-D layout: x, y, z, quat, ...)
    flip = 1 - 2 * (q[:, 1] ** 2 + q[:, 2] ** 2) < 0
    rows = []
    for c in range(len(path)):
        for fl in (False, True):
            m = (cell == c) & (flip == fl)
            if m.any():
                rows.append(
                    {
                        "path_cell": c,
                        "flipped": fl,
                        "states": int(m.sum()),
                        "V_mean": float(v[m].mean()),
                        "return_to_go_mean": float(g[m].mean()),
                    }
                )
    return {"V_mean": float(v.mean()), "return_to_go_mean": float(g.mean()), "by_cell": rows}


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
    p.add_argument("--run-seeds", type=int, default=1, help="--seeds the run was made with (the first is rolled out)")
    p.add_argument("--run-eval-every", type=int, default=5000, help="--eval-every the run was made with")
    p.add_argument("--data", default=None, help="print the data-card figures of this local AntMaze dataset")
    p.add_argument("--values", action="store_true", help="with --run-algo iql: V(s) vs return-to-go by path cell")
    args = p.parse_args(argv)
    if args.values:
        out = run_values(
            args.run_dataset, args.run_steps, args.run_results, args.run_seeds, args.run_eval_every, args.episodes
        )
        print(json.dumps(out, indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
        return
    if args.data:
        print(json.dumps(data_figures(args.data), indent=1))
        return
    if args.run_algo:
        rows = run_progress(
            args.run_algo,
            args.run_dataset,
            args.run_steps,
            args.run_results,
            args.episodes,
            args.run_seeds,
            args.run_eval_every,
        )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    policy = ac.load_expert(behavior_dir_or_error(args.behavior_dir))
    rows = []
    print(
        f"{'maze':8s} {'noise':>5s} {'episodes':>8s} {'success%':>8s} {'in eval limit%':>14s} {'flips':>5s} "
        f"{'steps to goal':>13s} {'steps/s':>8s}"
    )
    for maze in args.mazes:
        for noise in args.noise:
            r = measure(maze, noise, args.episodes, args.steps, policy, args.seed)
            rows.append(r)
            within = next(v for k, v in r.items() if k.startswith("success_within_"))
            stg = f"{r['mean_steps_to_goal']:.0f}" if r["mean_steps_to_goal"] else "-"
            print(
                f"{maze:8s} {noise:5.2f} {r['episodes']:8d} {r['success']:8.1f} {within:14.1f} {r['flips']:5d} "
                f"{stg:>13s} {r['steps_per_second']:8.0f}",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
