"""Success table of the scripted Kitchen demonstrator (offbench/build/kitchen_demo.py).

Each subtask is run alone from the env's reset (FrankaKitchen-v1, 280-step limit) for N seeded episodes;
then the four-task sequences of D4RL's datasets. A subtask succeeds when the env's own rule holds (its
joints within 0.3 of the goal). ``--recipe-demos N`` instead runs N complete-sequence demos as the recipe
draws them (``kitchen.demo``: styles, noise, DART; reset seeds 1000+i, rng stream ``--stream``) and counts the
microwave's and the light switch's tries per demo (``Demonstrator.turn`` calls). Usage:

    nice -n 10 .venv/bin/python scripts/measure_kitchen.py --episodes 20 [--noise 0.0] [--tasks microwave,kettle]
    nice -n 10 .venv/bin/python scripts/measure_kitchen.py --recipe-demos 24 --stream 0
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
    ap.add_argument("--recipe-demos", type=int, default=0, help="run N complete demos as the recipe draws them")
    ap.add_argument("--stream", type=int, default=0, help="their rng stream (np.random.default_rng([stream, 0]))")
    ap.add_argument("--funnel", type=float, default=None, help="a candidate: kitchen_demo.FUNNEL (docs/kitchen.md)")
    args = ap.parse_args()
    if args.funnel is not None:
        from offbench.recipes import kitchen_demo

        kitchen_demo.FUNNEL = args.funnel
    if args.recipe_demos:
        return recipe_demos(args.recipe_demos, args.stream, args.limit)

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


def recipe_demos(n: int, stream: int, limit: int = 280):
    """Complete-sequence demos as ``kitchen.demo`` records them: the microwave's and the light switch's tries
    (``Demonstrator.turn`` calls) and successes, all four done, the step of the 4th completion, the demos' lengths."""
    from offbench.recipes import kitchen, kitchen_demo

    Demonstrator = kitchen_demo.Demonstrator
    tries, turn = [], Demonstrator.turn

    def counting(self, joint, *a, **k):
        tries[-1][joint] = tries[-1].get(joint, 0) + 1
        yield from turn(self, joint, *a, **k)

    Demonstrator.turn = counting
    env = kitchen._env(kitchen.POOL, terminate=False, steps=kitchen.DEMO_STEPS)
    rng, demos = np.random.default_rng([stream, 0]), []
    try:
        for k in range(n):
            tries.append({})
            demos.append(kitchen.demo(list(kitchen.COMPLETE), 1000 + k, rng, env))
    finally:
        env.close()
        Demonstrator.turn = turn
    done = [d for d in demos if kitchen.solves(d, kitchen.COMPLETE)]
    last = [max(d["done_at"][t] for t in kitchen.COMPLETE) for d in done]  # the 4th target task, not a stray one
    print(
        f"recipe v{kitchen.RECIPE_VERSION} (FUNNEL {kitchen_demo.FUNNEL}), {n} complete-sequence demos, "
        f"rng stream {stream}:"
    )
    # both go through Demonstrator.turn: the microwave's handle is grasped, the light switch pushed with open fingers
    for task, joint, how in (("microwave", "microwave", "grasp-and-turn"), ("light switch", "light_switch", "push")):
        ok = sum(task in d["done_at"] for d in demos)
        print(f"  {task}: done in {ok}/{n}, {how} tries per demo {np.mean([t.get(joint, 0) for t in tries]):.2f}")
    print(
        f"  all four done in {len(done)}/{n}; "
        f"4th task at step {np.mean(last) if last else float('nan'):.0f} on average, "
        f"{sum(x <= limit for x in last)} within {limit}; those demos {np.mean([len(d['actions']) for d in done]):.0f} "
        f"steps long"
    )


if __name__ == "__main__":
    main()
