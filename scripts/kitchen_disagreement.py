"""Where do the Kitchen recipe's demos act differently at (nearly) the same state? (issue 29, docs/kitchen.md)

BC learns E[a|s]: where two demos pass through nearly the same state with different actions, it can only
average them (or, with few demos, reproduce each one it saw). For each setting of the recipe's parts, N
complete-sequence demos are drawn as the recipe draws them (``kitchen.demo``; reset seeds 1000+i) on two rng
streams (0 and 1); every transition of stream 1 is matched with its nearest transition of stream 0 (Euclidean
over the robot's joints and the objects' positions, obs[0:9] and obs[18:39]: radians and metres, no
velocities), and the script prints the median of those distances and, by distance, half the mean squared
difference of their arm actions (7 joints): the action variance two demos hold at one state. The recorded
action noise alone contributes its variance, ``kitchen.ACTION_NOISE`` squared (0.01 in recipe version 4).

    nice .venv/bin/python scripts/kitchen_disagreement.py --demos 8 [--parts none,"v4 (all)"]

Settings: "none" switches every part off (no style, no DART push, no action noise, no start-posture noise, no
pauses; the demonstrator's grasp jitter stays); each named part alone; the recipe as registered ("v4 (all)");
and the recipe without one part.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree

from offbench.recipes import kitchen

PARTS = {  # the module constant that switches each part, and its value in the recipe as registered
    "styles": ("STYLE_SCALE", kitchen.STYLE_SCALE),
    "DART": ("DISTURB_SIGMA", kitchen.DISTURB_SIGMA),
    "action noise": ("ACTION_NOISE", kitchen.ACTION_NOISE),
    "start posture": ("START_NOISE", kitchen.START_NOISE),
    "pauses": ("PAUSE_MAX", kitchen.PAUSE_MAX),
}
OFF = {"STYLE_SCALE": 0.0, "DISTURB_SIGMA": 0.0, "ACTION_NOISE": 0.0, "START_NOISE": 0.0, "PAUSE_MAX": 0}
ALL = dict(PARTS.values())
SETTINGS = {
    "none": {},
    **{part: dict([PARTS[part]]) for part in PARTS},
    f"v{kitchen.RECIPE_VERSION} (all)": ALL,
    **{f"v{kitchen.RECIPE_VERSION} without {part}": {**ALL, PARTS[part][0]: OFF[PARTS[part][0]]} for part in PARTS},
}
DIMS = np.r_[0:9, 18:39]  # FrankaKitchen-v1's observation: robot qpos 9, robot qvel 9, object qpos 21, object qvel 20
BINS = ((0.0, 0.03), (0.03, 0.1), (0.1, 0.2))


def demos(n: int, stream: int, env) -> tuple[np.ndarray, np.ndarray]:
    """States (DIMS) and arm actions of n complete-sequence demos on one rng stream, as the recipe draws them."""
    rng, states, actions = np.random.default_rng([stream, 0]), [], []
    for k in range(n):
        d = kitchen.demo(list(kitchen.COMPLETE), 1000 + k, rng, env)
        states.append(np.asarray(d["observation"])[:-1, DIMS])
        actions.append(np.asarray(d["actions"])[:, :7])
    return np.concatenate(states), np.concatenate(actions)


def disagreement(n: int, setting: dict, env) -> dict:
    """Stream 1's transitions against their nearest of stream 0: the median distance, and per distance bin the
    count and half the mean squared arm-action difference (nan for an empty bin)."""
    saved = {k: getattr(kitchen, k) for k in OFF}
    try:
        for k, v in {**OFF, **setting}.items():
            setattr(kitchen, k, v)
        (x, ax), (y, ay) = demos(n, 0, env), demos(n, 1, env)
    finally:
        for k, v in saved.items():
            setattr(kitchen, k, v)
    d, j = cKDTree(x).query(y)  # each of stream 1's transitions: its nearest of stream 0
    half = ((ay - ax[j]) ** 2).mean(1) / 2
    bins = []
    for lo, hi in BINS:
        k = (d >= lo) & (d < hi)
        bins.append((lo, hi, int(k.sum()), float(half[k].mean()) if k.any() else float("nan")))
    return {"median": float(np.median(d)), "bins": bins}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demos", type=int, default=8, help="demos per rng stream and setting")
    ap.add_argument("--parts", default=",".join(SETTINGS), help=f"comma-separated settings of {list(SETTINGS)}")
    a = ap.parse_args(argv)
    names = [s for s in a.parts.split(",") if s]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown:
        ap.error(f"unknown setting(s) {unknown}: choose from {list(SETTINGS)}")
    env = kitchen._env(kitchen.POOL, terminate=False, steps=kitchen.DEMO_STEPS)
    try:
        for name in names:
            t0 = time.time()
            r = disagreement(a.demos, SETTINGS[name], env)
            cells = "; ".join(f"[{lo}, {hi}) n {n} {h:.4f}" for lo, hi, n, h in r["bins"])
            print(
                f"{name}: median distance {r['median']:.3f}; by distance: {cells} ({time.time() - t0:.0f} s)",
                flush=True,
            )
    finally:
        env.close()


if __name__ == "__main__":
    main()
