"""Success table of the scripted Kitchen demonstrator (offbench/build/kitchen_demo.py).

Each subtask is run alone from the env's reset (FrankaKitchen-v1, 280-step limit) for N seeded episodes;
then the four-task sequences of D4RL's datasets. A subtask succeeds when the env's own rule holds (its
joints within 0.3 of the goal). Usage:

    nice -n 10 .venv/bin/python scripts/measure_kitchen.py --episodes 20 [--noise 0.0] [--tasks microwave,kettle]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from offbench.recipes.kitchen_demo import SUBTASKS
from offbench.recipes.kitchen_rollout import make_env, run_tasks

SEQUENCES = {
    "complete": ["microwave", "kettle", "light switch", "slide cabinet"],
    "mixed target": ["microwave", "kettle", "bottom burner", "light switch"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.0, help="Gaussian action noise (std) added to the demonstrator")
    ap.add_argument("--start-noise", type=float, default=0.0, help="uniform start-posture perturbation (rad)")
    ap.add_argument("--tasks", default=",".join(SUBTASKS), help="comma-separated subtasks (default: all seven)")
    ap.add_argument("--sequences", default="complete,mixed target")
    ap.add_argument("--limit", type=int, default=280, help="episode step limit")
    args = ap.parse_args()

    rows = []
    t0, steps_total = time.time(), 0
    for task in [t for t in args.tasks.split(",") if t]:
        env = make_env([task], max_episode_steps=args.limit, terminate_on_tasks_completed=False)
        ok, steps = 0, []
        for s in range(args.episodes):
            out = run_tasks(env, [task], seed=1000 + s, action_noise=args.noise, start_noise=args.start_noise)
            steps_total += out["steps"]
            if task in out["completed"]:
                ok += 1
                steps.append(out["completed_at"][out["completed"].index(task)])
        rows.append((task, ok, args.episodes, np.mean(steps) if steps else float("nan")))
        print(f"{task:16s} {ok:3d}/{args.episodes:<3d} mean steps to success {rows[-1][3]:6.1f}", flush=True)
    for name in [n for n in args.sequences.split(",") if n]:
        order = SEQUENCES[name]
        env = make_env(order, max_episode_steps=args.limit, terminate_on_tasks_completed=False)
        n_all, n_tasks, steps = 0, [], []
        for s in range(args.episodes):
            out = run_tasks(env, order, seed=2000 + s, action_noise=args.noise, start_noise=args.start_noise)
            steps_total += out["steps"]
            n_tasks.append(len(out["completed"]))
            if len(out["completed"]) == len(order):
                n_all += 1
                steps.append(out["completed_at"][-1])
        print(
            f"{name} {' -> '.join(order)}: all four {n_all}/{args.episodes} within {args.limit} steps, "
            f"mean tasks {np.mean(n_tasks):.2f}, mean step of the 4th completion "
            f"{np.mean(steps) if steps else float('nan'):.1f} (max {max(steps) if steps else float('nan')})",
            flush=True,
        )
    dt = time.time() - t0
    print(
        f"({steps_total} env steps in {dt:.0f} s, {steps_total / max(dt, 1e-9):.0f} steps/s; "
        f"action noise {args.noise}, start noise {args.start_noise})"
    )


if __name__ == "__main__":
    main()
