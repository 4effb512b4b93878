"""Calibrate AntMaze recipe v3 (issue 29): how hard is the rebuilt data for imitation?

    nice -n 19 .venv/bin/python scripts/calibrate_antmaze.py [--dataset umaze] [--episodes 20] [--draws 16]
        [--bias 30 ...] [--speed-lo 0.5] [--speed-hi 1.5] [--detour-p 0 0.25 0.5 ...] [--no-write]
    nice -n 19 .venv/bin/python scripts/calibrate_antmaze.py --bc [--bc-steps 100000] [--bc-seeds 3]
        [--bc-eval-episodes 100] [--build-size N] --minari-dir /tmp/me/minari --results /tmp/me/results

**The proxy** (cheap, no training): the success rate, from the suite's evaluation start to its evaluation
goal within its step limit (umaze 700, else 1000), of the data's *conditional-mean policy*, the policy BC tries to
recover. It is approximated so:

1. at each evaluation episode, ``--draws`` K controllers (:class:`offbench.recipes.ant_controller.SteeredAnt`)
   are made, each with its own draw of the per-episode perturbations
   (:meth:`offbench.recipes.antmaze.Perturbations.draw`: heading bias, speed factor, and with probability
   ``p`` a detour cell and start step: from that step on that controller aims at the cell until the Ant is
   within :data:`~offbench.recipes.antmaze.DETOUR_REACHED_M` of it, then at the goal, as in the recipe,
   :class:`~offbench.recipes.antmaze.Detour`); for a multi-goal set (``*-play``, ``*-diverse``) each of the K
   also draws its commanded goal as the recipe does (a play cell, or any free cell) and aims at its centre:
   the data's E[a|s] averages over the commanded goals too, and only the evaluation goal counts as success;
2. at every step all K see the same MuJoCo state (each keeps its own internal state: velocity filter, leg
   labelling, planner) and each gives its action ``a_k``; the action noise is integrated exactly:
   ``E[clip(a_k + e, -1, 1)]`` for ``e ~ N(0, 0.2^2)`` in closed form (Gaussian moments of a clipped normal);
3. the Ant is stepped, deterministically, with the mean over k of those expectations (no noise drawn).

So the proxy averages over the *prior* of the perturbations at every state, where BC's E[a|s] averages over
the perturbations *of the episodes that visited s* (a detour that is never completed by the mean policy
keeps pulling here; in the data its episode would have left that state). It ranks settings; BC decides.
An episode fails at a flip (upside-down torso) or at the step limit. ``behaviour`` is the success of the
data's own policy from the same starts (one draw per episode, N(0, 0.2) noise drawn, clipped).

**BC** (``--bc``): the suite's real pipeline on a build of the recipe *as registered* (its constants, not the
sweep's): ``offbench.run("bc", "antmaze", ...)``, which builds the dataset under ``--minari-dir`` when it is
missing (``--build-size``: smaller than the recipe's 1M, labelled so in the run's variant), then trains
``--bc-seeds`` seeds for ``--bc-steps`` steps and evaluates at the end with ``--bc-eval-episodes`` episodes per
seed. The score is the mean of the seeds' final scores, its spread the sample s.d. over seeds.

Rows for the recipe's own constants are written to ``results/reference/rebuilt_bc.csv`` (replacing a row with
the same dataset, version, steps, seeds and evaluation episodes); a sweep setting that is not the recipe's is
printed only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from calibration import ROOT, TABLE, expected_clip, write_row  # scripts/calibration.py


class Member:
    """One controller of the mean policy, with its own perturbation draw."""

    def __init__(self, policy, plain, draw: dict, goal_xy=None):
        from offbench.data.tasks import MAZE_SCALING
        from offbench.recipes import ant_controller as ac
        from offbench.recipes.antmaze import Detour

        self.ctl = ac.SteeredAnt(policy, plain, MAZE_SCALING)
        self.ctl.perturb(draw["heading_bias_deg"], draw["speed_factor"])
        self.detour = Detour(self.ctl.grid, draw)
        self.goal = goal_xy  # None: the environment's (evaluation) goal

    def act(self, t: int, data, goal):
        goal = goal if self.goal is None else self.goal
        return self.ctl.act(data, self.detour.aim(t, data.qpos[:2], goal))


def proxy(name: str, perturbations, policy, episodes: int, draws: int, seed: int = 0) -> dict:
    """Success % of the conditional-mean policy (module docstring) and of the behaviour itself."""
    from offbench import envs
    from offbench.data.suites import get_suite
    from offbench.recipes import ant_controller as ac
    from offbench.recipes.antmaze import ACTION_NOISE, DATASETS, PLAY_GOALS, maze_layout

    task = get_suite("antmaze").task(f"antmaze-{name}-v2")
    plain, _, eval_goal = maze_layout(task.name)
    grid = ac.MazeGrid(plain)
    free = grid.free_cells()
    maze, kind = DATASETS[name]
    goals = None if kind == "fixed" else (PLAY_GOALS[maze] if kind == "play" else free)

    def member(rng):
        cell = eval_goal if goals is None else tuple(goals[int(rng.integers(len(goals)))])
        xy = None if goals is None else grid.cell_xy(cell)
        return Member(policy, plain, perturbations.draw(rng, free, cell), xy)

    env = envs.make_env(task.env_id, task.env_kwargs, None)
    u = env.unwrapped
    limit = task.max_episode_steps
    out = {"mean_policy": [], "behaviour": [], "flips_mean": 0, "flips_behaviour": 0}
    t0 = time.time()
    for ep in range(episodes):
        rng = np.random.default_rng([seed, ep])
        members = [member(rng) for _ in range(draws)]
        beh = member(rng)
        for kind, run in (("mean_policy", members), ("behaviour", [beh])):
            env.reset(seed=seed * 1000 + ep)
            data = u.ant_env.data
            ok = False
            for t in range(limit):
                acts = np.stack([m.act(t, data, u.goal) for m in run])
                if kind == "mean_policy":
                    a = expected_clip(acts, ACTION_NOISE).mean(axis=0)
                else:
                    a = np.clip(acts[0] + rng.normal(0.0, ACTION_NOISE, acts[0].shape), -1.0, 1.0)
                _, _, _, _, info = u.step(a)
                if info["success"]:
                    ok = True
                    break
                if ac.is_flipped(data):
                    out["flips_mean" if kind == "mean_policy" else "flips_behaviour"] += 1
                    break
            out[kind].append(ok)
    env.close()
    return {
        "dataset": task.name,
        "episodes": episodes,
        "draws": draws,
        "proxy_success": 100.0 * float(np.mean(out["mean_policy"])),
        "behaviour_success": 100.0 * float(np.mean(out["behaviour"])),
        "flips_mean": out["flips_mean"],
        "flips_behaviour": out["flips_behaviour"],
        "seconds": round(time.time() - t0, 1),
    }


def run_bc(dataset: str, steps: int, seeds: int, eval_episodes: int, results: str, build_size) -> dict:
    """BC through offbench's own pipeline (builds the dataset with the registered recipe when missing)."""
    import offbench

    recs = offbench.run(
        "bc",
        "antmaze",
        [dataset],
        steps=steps,
        seeds=seeds,
        eval_every=steps,
        eval_episodes=eval_episodes,
        results=results,
        build_size=build_size,
        progress=False,
    )
    scores = [float(r["final_score"]) for r in recs]
    return {
        "bc_scores": scores,
        "bc_score": round(float(np.mean(scores)), 2),
        "bc_sd": round(float(np.std(scores, ddof=1)), 2) if len(scores) > 1 else "",
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--dataset",
        choices=["umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse"],
        default="umaze",
        help="antmaze-<this>-v2",
    )
    p.add_argument("--episodes", type=int, default=20, help="proxy episodes per setting (0: no proxy)")
    p.add_argument("--draws", type=int, default=16, help="K perturbation draws averaged by the mean policy")
    p.add_argument("--bias", type=float, nargs="+", default=None, help="heading bias half-range(s), degrees")
    p.add_argument("--speed-lo", type=float, default=None)
    p.add_argument("--speed-hi", type=float, default=None)
    p.add_argument("--detour-p", type=float, nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bc", action="store_true", help="also train BC on a build of the registered recipe")
    p.add_argument("--bc-steps", type=int, default=100_000)
    p.add_argument("--bc-seeds", type=int, default=3)
    p.add_argument("--bc-eval-episodes", type=int, default=100)
    p.add_argument("--build-size", type=int, default=None, help="transitions of the build (default: the recipe's)")
    p.add_argument("--minari-dir", default=None, help="MINARI_DATASETS_PATH for the build (a scratch folder)")
    p.add_argument("--results", default=None, help="results folder of the BC runs (a scratch folder)")
    p.add_argument("--behavior-dir", default=None)
    p.add_argument("--no-write", action="store_true", help=f"print only; do not update {TABLE.relative_to(ROOT)}")
    a = p.parse_args(argv)
    if a.bc and not (a.minari_dir and a.results):
        p.error("--bc needs --minari-dir and --results (scratch folders: the build and runs are written there)")
    if a.minari_dir:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(a.minari_dir).expanduser().resolve())

    from offbench.recipes import ant_controller as ac
    from offbench.recipes import antmaze as am
    from offbench.recipes.recipes import behavior_dir_or_error

    default = am.Perturbations()
    biases = a.bias if a.bias is not None else [default.heading_bias_deg]
    ps = a.detour_p if a.detour_p is not None else [default.detour_p]
    speed = (
        a.speed_lo if a.speed_lo is not None else default.speed_range[0],
        a.speed_hi if a.speed_hi is not None else default.speed_range[1],
    )
    dataset = f"antmaze-{a.dataset}-v2"
    command = "scripts/calibrate_antmaze.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    today = datetime.date.today().isoformat()
    proxy_of_recipe = ""
    if a.episodes > 0:
        policy = ac.load_expert(behavior_dir_or_error(a.behavior_dir))
        print("dataset       bias  speed       detour_p  K   episodes  proxy %  behaviour %  flips(mean/beh)  s")
        for bias in biases:
            for dp in ps:
                pert = am.Perturbations(heading_bias_deg=bias, speed_range=speed, detour_p=dp)
                r = proxy(a.dataset, pert, policy, a.episodes, a.draws, a.seed)
                print(
                    f"{a.dataset:13} {bias:5.1f} {speed[0]:.2f}-{speed[1]:.2f}  {dp:8.2f}  {a.draws:<3d} {a.episodes:<9d} "
                    f"{r['proxy_success']:7.1f}  {r['behaviour_success']:11.1f}  "
                    f"{r['flips_mean']}/{r['flips_behaviour']:<14} {r['seconds']}",
                    flush=True,
                )
                if pert == default:
                    proxy_of_recipe = round(r["proxy_success"], 1)
    row = {
        "dataset": dataset,
        "recipe_version": am.VERSION,
        "proxy_success": proxy_of_recipe,
        "command": command,
        "date": today,
    }
    if a.bc:
        bc = run_bc(dataset, a.bc_steps, a.bc_seeds, a.bc_eval_episodes, a.results, a.build_size)
        print(
            f"BC on {dataset} (recipe v{am.VERSION}), {a.bc_steps} steps, {a.bc_seeds} seeds, "
            f"{a.bc_eval_episodes} episodes each: {bc['bc_score']} +- {bc['bc_sd']} (seeds: {bc['bc_scores']})"
        )
        row.update(
            bc_score=bc["bc_score"],
            bc_sd=bc["bc_sd"],
            steps=a.bc_steps,
            seeds=a.bc_seeds,
            eval_episodes=a.bc_eval_episodes,
        )
    if a.no_write or (proxy_of_recipe == "" and not a.bc):
        print("(no row written: --no-write, or no setting was the recipe's own)")
    else:
        write_row(row)
        print(f"row written to {TABLE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
