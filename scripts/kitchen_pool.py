"""Which Kitchen subtasks a build's demos do, in which order, and which plans the demonstrator completes (issue 29).

    MINARI_DATASETS_PATH=DIR .venv/bin/python scripts/kitchen_pool.py [--dataset rebuilt/kitchen-partial-v0]
    .venv/bin/python scripts/kitchen_pool.py --plans 4
    .venv/bin/python scripts/kitchen_pool.py --plans 12 --hinge-then-slide [--set kitchen_demo.SLIDE_YAW=0.5 ...]

The first mode reads a build (Minari's API) and finds, in each demo, the step at which each of the seven subtasks is
first done, from the observation's object positions (FrankaKitchen-v1's rule: the subtask's joints within
``BONUS_THRESH`` of their goal; ``observation`` columns 18-38 are the object joints, qpos 9-29). It prints the
demos' orders, the first subtask done, and what follows the microwave, the microwave and the kettle, and the
kettle: what a cloned policy meets at those states (docs/kitchen.md "Session 11 of wave 3": BC does the most
frequent next subtask). ``--plans N`` runs the recipe's demonstrator N times on each of the human demos' 24 plans
(``kitchen.RPL_PLANS``) and prints how many of its demos did the whole plan and each subtask; ``--hinge-then-slide``
only on the six that open the hinge cabinet and then the slide cabinet (recipe v6's approach; docs/kitchen.md
"Session 12 of wave 3"), ``--set`` a candidate's constants (scripts/calibration.py).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

OBJECTS = 18  # the object joints' first column in FrankaKitchen-v1's 59-d observation (qpos 9 onwards)
PREFIXES = (("microwave",), ("microwave", "kettle"), ("kettle",))


def orders(episodes) -> list[tuple]:
    """Per demo (a [T, 59] ``observation`` array), the subtasks done in it, in the order first done; a subtask
    already done at the demo's first step is left out."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    out = []
    for obs in episodes:
        obs = np.asarray(obs)
        first = {}
        for task, idx in OBS_ELEMENT_INDICES.items():
            cols = OBJECTS + np.asarray(idx) - 9
            done = np.linalg.norm(obs[:, cols] - np.asarray(OBS_ELEMENT_GOALS[task]), axis=1) < BONUS_THRESH
            if done.any() and not done[0]:
                first[task] = int(np.argmax(done))
        out.append(tuple(sorted(first, key=first.get)))
    return out


def summary(seqs: list[tuple]) -> dict:
    """Counts: whole orders, the first subtask, the subtask after each of :data:`PREFIXES`, subtasks per demo."""
    nxt = {p: Counter(s[len(p)] for s in seqs if s[: len(p)] == p and len(s) > len(p)) for p in PREFIXES}
    return {
        "orders": Counter(seqs),
        "first": Counter(s[0] for s in seqs if s),
        "next": nxt,
        "per_demo": Counter(len(s) for s in seqs),
    }


def hinge_then_slide(plan) -> bool:
    """The plan opens the hinge cabinet before the slide cabinet."""
    p = list(plan)
    return "hinge cabinet" in p and "slide cabinet" in p[p.index("hinge cabinet") :]


def plans(n: int, seed: int = 7, only=None) -> list[tuple]:
    """(plan, whole plans done, {subtask: times done}) for ``n`` demos of each of the human demos' plans (those
    ``only(plan)`` keeps), one random stream through them all."""
    from offbench.recipes import kitchen

    env = kitchen._env(kitchen.POOL, terminate=False, steps=kitchen.DEMO_STEPS)
    rng, rows = np.random.default_rng([seed, 1]), []
    for i, plan in enumerate(kitchen.RPL_PLANS):
        if only is not None and not only(plan):
            continue
        demos = [kitchen.demo(list(plan), 10_000 + 100 * i + k, rng, env) for k in range(n)]
        done = {t: sum(t in d["done_at"] for d in demos) for t in plan}
        rows.append((plan, sum(kitchen.solves(d, plan) for d in demos), done))
    env.close()
    return rows


def _top(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="rebuilt/kitchen-partial-v0")
    p.add_argument("--plans", type=int, default=0, help="run the demonstrator N times on each plan instead")
    p.add_argument("--hinge-then-slide", action="store_true", help="--plans: only the plans with hinge, then slide")
    p.add_argument("--set", action="append", default=[], metavar="MODULE.CONST=VALUE", help="--plans: a candidate")
    a = p.parse_args(argv)
    if a.plans:
        from calibration import set_constants  # scripts/calibration.py

        from offbench.recipes import kitchen, kitchen_demo

        try:
            sets = set_constants(a.set, {"kitchen": kitchen, "kitchen_demo": kitchen_demo})
        except ValueError as e:
            p.error(str(e))
        tot, wholes, rows = Counter(), 0, plans(a.plans, only=hinge_then_slide if a.hinge_then_slide else None)
        for plan, whole, done in rows:
            print(f"{' > '.join(plan)}: whole plan {whole}/{a.plans}; per subtask {done}")
            tot.update(done)
            wholes += whole
        print(
            f"recipe v{kitchen.RECIPE_VERSION}{' with ' + ', '.join(sets) if sets else ''}: whole plans "
            f"{wholes}/{a.plans * len(rows)}; done per subtask (of its attempts): {dict(tot)}"
        )
        return
    import minari

    ds = minari.load_dataset(a.dataset)
    s = summary(orders(ep.observations["observation"] for ep in ds.iterate_episodes()))
    print(
        f"{a.dataset}: {sum(s['per_demo'].values())} demos; subtasks done per demo: {dict(sorted(s['per_demo'].items()))}"
    )
    print("first subtask done:", _top(s["first"]))
    for pre, c in s["next"].items():
        print(f"after {' > '.join(pre)}:", _top(c))
    print("orders (most common first):")
    for order, k in s["orders"].most_common(25):
        print(f"  {k:4d}  {' > '.join(order) or '(none)'}")


if __name__ == "__main__":
    main()
