"""How much of a Kitchen build's arm actions the joint velocities in its observation already tell (issue 29).

    MINARI_DATASETS_PATH=DIR .venv/bin/python scripts/kitchen_copycat.py [--dataset rebuilt/kitchen-complete-v0]

Prints the share of the arm actions' variance (R^2 of a least-squares linear fit, with an intercept) explained by
each part of FrankaKitchen-v1's 59-d ``observation`` (robot qpos 0:9, robot qvel 9:18, object qpos 18:39, object
qvel 39:59), by D4RL's part of it (the 30 joint positions, ``offbench.data.tasks.KITCHEN_POSITIONS``), by the whole,
and by the demo's previous action. The env integrates each action from the last reading into a position target,
so the next reading's velocity carries that action; where demos move smoothly the last action tells the next, and
a cloned policy that sees the velocities copies it (docs/kitchen.md "Session 10 of wave 3").
"""

from __future__ import annotations

import argparse

import numpy as np

from offbench.data.tasks import KITCHEN_POSITIONS

ARM = 7
PARTS = {
    "robot qvel (9)": list(range(9, 18)),
    "joint positions, D4RL's (30)": list(KITCHEN_POSITIONS),
    "whole observation (59)": list(range(59)),
}


def r2(x: np.ndarray, y: np.ndarray) -> float:
    """1 - residual variance / variance of ``y`` (summed over its columns) for the least-squares fit y ~ x + 1."""
    x = np.c_[np.asarray(x, np.float64), np.ones(len(x))]
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(1.0 - (y - x @ w).var(0).sum() / y.var(0).sum())


def table(episodes) -> dict:
    """R^2 of the arm actions on each part of the observation and on the previous action (0 at a demo's start);
    ``episodes``: (observation [T+1, 59], actions [T, 9]) pairs."""
    obs = np.concatenate([np.asarray(o)[:-1] for o, _ in episodes])
    act = np.concatenate([np.asarray(a)[:, :ARM] for _, a in episodes]).astype(np.float64)
    prev = np.concatenate([np.r_[np.zeros((1, ARM)), np.asarray(a)[:-1, :ARM]] for _, a in episodes])
    out = {name: r2(obs[:, cols], act) for name, cols in PARTS.items()}
    out["previous action (7)"] = r2(prev, act)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="rebuilt/kitchen-complete-v0")
    a = p.parse_args(argv)
    import minari

    ds = minari.load_dataset(a.dataset)
    eps = [(ep.observations["observation"], ep.actions) for ep in ds.iterate_episodes()]
    print(f"{a.dataset}: {sum(len(x) for _, x in eps)} transitions, {len(eps)} demos; R^2 of the arm actions on")
    for name, v in table(eps).items():
        print(f"  {name:30s} {v:.3f}")


if __name__ == "__main__":
    main()
