"""Calibrate Kitchen recipe v3 (issue 29): how hard is the rebuilt data for imitation?

    nice -n 19 .venv/bin/python scripts/calibrate_kitchen.py [--kinds complete partial mixed] [--episodes 10]
        [--draws 8] [--scale 0 0.5 1 ...] [--demos 10] [--no-write]
    nice -n 19 .venv/bin/python scripts/calibrate_kitchen.py --episodes 0 --bc [--bc-steps 100000]
        [--bc-seeds 3] [--bc-eval-episodes 10] [--build-size N] [--build-seeds 0 1 2] --minari-dir /tmp/me/minari
        --results /tmp/me/results [--set kitchen.ACTION_NOISE=0 ...]

**The demonstrator** (``--demos N``): N complete-sequence demos as the recipe collects them (per-demo style,
start-posture noise, pauses, N(0, 0.1) action noise, up to ``kitchen.DEMO_STEPS`` steps): how many do all four
target tasks, the mean number done and the mean length. Only successful ones enter the complete subset.

**The proxy** (cheap, no training): the score (100 x target tasks done / 4, evaluation env: reset without
start noise, 280 steps) of the data's *conditional-mean policy*, the policy BC tries to recover. At each
evaluation episode ``--draws`` K demonstrators (:class:`offbench.recipes.kitchen_demo.Demonstrator`) are made,
each with its own rng, its own order of subtasks as the dataset draws them (complete: the complete
sequence; partial and mixed: one order per episode drawn as the pool draws them,
:data:`~offbench.recipes.kitchen.COMPLETE_SHARE` complete sequences, the rest undirected, shared by the K: so
this proxy measures the styles' effect, not the mixture of orders that BC must also sort out) and its own
style (:func:`offbench.recipes.kitchen.draw_style`, spreads x ``--scale``); at every step all K see the
same MuJoCo state, each gives its next action (pauses and primitives as in the data; an exhausted one holds
still), and the arm is stepped with the mean over k of
``E[clip(a_k + e, -1, 1)]``, ``e ~ N(0, 0.1^2)`` in closed form. It averages over the styles' *prior* at every
state, where BC averages over the demos that visited the state; it ranks settings, BC decides.

**BC** (``--bc``): the suite's real pipeline on builds of the recipe *as registered* (its constants, not the
``--scale`` sweep's): ``offbench.run("bc", "kitchen", ...)`` builds the datasets under ``--minari-dir`` when
missing (``--build-size``: smaller than D4RL's sizes, labelled so in the run's variant; complete is capped at
its own 3,680), trains ``--bc-seeds`` seeds for ``--bc-steps`` steps and evaluates at the end with
``--bc-eval-episodes`` episodes per seed. ``--build-seeds 0 1 2``: one build per data seed (each in a
``data-seed-N`` folder of ``--minari-dir`` and ``--results``) and BC on each; BC on complete's 3,680
transitions varies more between builds than between BC seeds (docs/kitchen.md). Score: the mean of all
runs' final scores, spread: their sample s.d.; the row names its data seeds.

**A candidate** (``--set MODULE.CONST=VALUE``, repeatable; ``--funnel F`` is ``--set kitchen_demo.FUNNEL=F``): a
constant of ``kitchen`` or ``kitchen_demo`` set, as its own type, before anything builds (builds and BC in this
process); its numbers are printed with the settings and written nowhere (docs/kitchen.md "Session 9 of wave 3").

Rows (the recipe's constants only, ``--scale`` = ``kitchen.STYLE_SCALE``) go to
``results/reference/rebuilt_bc.csv``, replacing a row with
the same dataset, version, steps, seeds, evaluation episodes, data seeds and observation; other rows of the table
are kept. A BC row names the width of the observation its runs saw (``obs_dim``, from their records: 30 since the
suite shows rebuilt Kitchen data as D4RL's joint positions, docs/kitchen.md "Session 10 of wave 3").
Targets (IQL paper Table 3, BC on D4RL's kitchen): complete 65.0, partial 38.0, mixed 51.5.
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
from calibration import ROOT, TABLE, expected_clip, set_constants, write_row  # scripts/calibration.py

D4RL_BC = {"complete": 65.0, "partial": 38.0, "mixed": 51.5}  # IQL paper Table 3 (BC column)


def _orders(kind: str, rng, k: int, kitchen) -> list[list[str]]:
    """complete: the complete sequence; partial/mixed: one order drawn as the pool draws them (complete with
    probability COMPLETE_SHARE, else undirected), shared by the K draws (averaging K different orders at the
    start state goes nowhere: 0 tasks at every setting tried, see docs/kitchen.md)."""
    if kind == "complete":
        return [list(kitchen.COMPLETE) for _ in range(k)]
    order = list(kitchen.COMPLETE) if rng.uniform() < kitchen.COMPLETE_SHARE else kitchen.undirected_order(rng)
    return [order for _ in range(k)]


def _plan(demo, order, rng, pause_max):
    """The actions of one demonstrator: a pause of 0..pause_max idle steps, then the primitive, per subtask
    (as :func:`offbench.recipes.kitchen_rollout.run_tasks` plans them)."""
    for t in order:
        for _ in range(int(rng.integers(0, pause_max + 1))):
            yield demo.action(demo.ee()[0], None, 1.0)
        yield from demo.primitive(t)


def proxy(kind: str, episodes: int, draws: int, scale: float, seed: int = 0) -> dict:
    """Score of the K-draw conditional-mean policy on dataset ``kind``'s targets (see the module doc)."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    from offbench.recipes import kitchen
    from offbench.recipes.kitchen_demo import Demonstrator

    targets = kitchen.TARGETS[kind]
    env = kitchen._env(targets, terminate=False)
    t0, done_counts = time.time(), []
    for ep in range(episodes):
        rng = np.random.default_rng([seed, ep, 7])
        env.reset(seed=5000 + ep)
        u = env.unwrapped
        gens, demos = [], []
        for k, order in enumerate(_orders(kind, rng, draws, kitchen)):
            r = np.random.default_rng([seed, ep, k])
            d = Demonstrator(env, r, style=kitchen.draw_style(r, order, scale))
            demos.append(d)
            gens.append(_plan(d, order, r, kitchen.PAUSE_MAX))
        done = set()
        for _ in range(kitchen.EPISODE_STEPS):
            acts = []
            for d, g in zip(demos, gens):
                a = next(g, None)
                acts.append(d.action(d.ee()[0], None, 1.0) if a is None else a)
            a = np.mean([expected_clip(x, kitchen.ACTION_NOISE) for x in acts], axis=0)
            env.step(a)
            for t in targets:
                if np.linalg.norm(u.data.qpos[OBS_ELEMENT_INDICES[t]] - OBS_ELEMENT_GOALS[t]) < BONUS_THRESH:
                    done.add(t)
            if len(done) == len(targets):
                break
        done_counts.append(len(done))
    env.close()
    return {
        "proxy_score": round(100 * float(np.mean(done_counts)) / len(targets), 1),
        "tasks": done_counts,
        "seconds": round(time.time() - t0, 1),
    }


def demonstrator(n: int, scale: float, seed: int = 0) -> dict:
    """``n`` complete-sequence demos as the recipe collects them (see the module doc)."""
    from offbench.recipes import kitchen

    env = kitchen._env(kitchen.POOL, terminate=False, steps=kitchen.DEMO_STEPS)
    t0, ok, tasks, lens = time.time(), 0, [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i, 11])
        d = kitchen.demo(list(kitchen.COMPLETE), 3000 + i, rng, env, style_scale=scale)
        ok += kitchen.solves(d, kitchen.COMPLETE)
        tasks.append(sum(t in d["done_at"] for t in kitchen.COMPLETE))
        lens.append(len(d["actions"]))
    env.close()
    return {"success": ok, "tasks": float(np.mean(tasks)), "length": float(np.mean(lens)), "s": time.time() - t0}


def demo_score(rewards, terminals, limit: int, n_targets: int = 4) -> tuple[float, int]:
    """A build's own demos scored as the evaluation scores a policy: 100 x the targets done by step ``limit`` / n.
    D4RL's dataset reward at a step counts the targets done so far, so a demo's is its reward at step
    min(limit, length) - 1; over the demos that end in a terminal (a cut last demo is left out). A policy that
    reproduced every demo from its start would score this: BC's ceiling on the build (docs/kitchen.md "Session 9")."""
    ends = np.flatnonzero(np.asarray(terminals))
    starts = np.r_[0, ends[:-1] + 1]
    done = [float(rewards[min(s + limit, e + 1) - 1]) for s, e in zip(starts, ends)]
    return round(100 * float(np.mean(done)) / n_targets, 1), len(ends)


def build_demo_score(kind: str) -> tuple[float, int]:
    """:func:`demo_score` of the build ``rebuilt/kitchen-<kind>-v0`` in MINARI_DATASETS_PATH, at the evaluation's
    limit, for that dataset's targets."""
    import minari

    from offbench.recipes import kitchen

    episodes = list(minari.load_dataset(f"rebuilt/kitchen-{kind}-v0").iterate_episodes())
    rewards = np.concatenate([e.rewards for e in episodes])
    terminals = np.concatenate([e.terminations for e in episodes])
    return demo_score(rewards, terminals, kitchen.EPISODE_STEPS, len(kitchen.TARGETS[kind]))


def run_bc(kinds, steps: int, seeds: int, eval_episodes: int, results: str, build_size, data_seeds=(0,)) -> dict:
    """BC through offbench's own pipeline on builds of the registered recipe, one per data seed (``kitchen.build``
    with ``seed``): with only seed 0 the builds and runs go to ``MINARI_DATASETS_PATH`` and ``results`` as they
    are (what ``offbench run`` builds by itself), else to a ``data-seed-N`` folder in each. The score is the
    mean over every (build, BC seed) run, the spread their sample s.d.; ``build_means`` the mean of each build,
    ``demo_scores`` each build's own demos scored as a policy would be (:func:`demo_score`)."""
    import offbench
    from offbench.data.fetch import build_locked
    from offbench.recipes import kitchen

    base = os.environ.get("MINARI_DATASETS_PATH")
    split = list(data_seeds) != [0]
    out = {}
    for kind in kinds:
        size = build_size if kind != "complete" or (build_size or 3680) < 3680 else None  # complete: 3,680
        name, scores, build_means, demo_scores = f"kitchen-{kind}-v0", [], [], []
        for ds in data_seeds:
            if split:
                os.environ["MINARI_DATASETS_PATH"] = str(Path(base) / f"data-seed-{ds}")
            print(f"{name}, data seed {ds}: {build_locked(name, size=size, seed=ds)[1]}", flush=True)
            demo_scores.append(build_demo_score(kind)[0])
            print(f"  its demos' own score within {kitchen.EPISODE_STEPS} steps: {demo_scores[-1]}", flush=True)
            recs = offbench.run(
                "bc",
                "kitchen",
                [name],
                steps=steps,
                seeds=seeds,
                eval_every=steps,
                eval_episodes=eval_episodes,
                results=str(Path(results) / f"data-seed-{ds}") if split else results,
                build_size=size,
                rebuild=False,
                progress=False,
            )
            got = [float(r["final_score"]) for r in recs]
            obs_dim = recs[0]["data"]["obs_dim"]  # the observation BC saw (the suite's view of the build)
            print(f"  BC per seed {got}", flush=True)
            scores += got
            build_means.append(round(float(np.mean(got)), 2))
        if split:
            os.environ["MINARI_DATASETS_PATH"] = base
        out[kind] = {
            "bc_scores": scores,
            "bc_score": round(float(np.mean(scores)), 2),
            "bc_sd": round(float(np.std(scores, ddof=1)), 2) if len(scores) > 1 else "",
            "build_means": build_means,
            "demo_scores": demo_scores,
            "size": size,
            "obs_dim": obs_dim,
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", nargs="+", choices=sorted(D4RL_BC), default=["complete", "partial", "mixed"])
    p.add_argument("--episodes", type=int, default=10, help="proxy episodes per dataset and setting (0: none)")
    p.add_argument("--draws", type=int, default=8, help="K styles averaged by the mean policy")
    p.add_argument(
        "--scale", type=float, nargs="+", default=None, help="style spread multiplier(s) (default: the recipe's)"
    )
    p.add_argument("--demos", type=int, default=0, help="complete-sequence demos to measure per setting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bc", action="store_true", help="also train BC on builds of the registered recipe")
    p.add_argument("--bc-steps", type=int, default=100_000)
    p.add_argument("--bc-seeds", type=int, default=3)
    p.add_argument("--bc-eval-episodes", type=int, default=10)
    p.add_argument("--build-size", type=int, default=None, help="pool transitions (default: D4RL's sizes)")
    p.add_argument(
        "--build-seeds", type=int, nargs="+", default=[0], help="data seeds: one build each, BC on every build"
    )
    p.add_argument("--minari-dir", default=None, help="MINARI_DATASETS_PATH for the builds (a scratch folder)")
    p.add_argument("--results", default=None, help="results folder of the BC runs (a scratch folder)")
    p.add_argument("--no-write", action="store_true", help=f"print only; do not update {TABLE.relative_to(ROOT)}")
    p.add_argument(
        "--funnel", type=float, default=None, help="a candidate: the reach down a funnel (kitchen_demo.FUNNEL; no row)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODULE.CONST=VALUE",
        help="a candidate recipe: set a constant of kitchen or kitchen_demo before anything builds (repeatable; no row)",
    )
    a = p.parse_args(argv)
    if a.bc and not (a.minari_dir and a.results):
        p.error("--bc needs --minari-dir and --results (scratch folders: the builds and runs are written there)")
    if a.minari_dir:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(a.minari_dir).expanduser().resolve())
    import warnings

    warnings.filterwarnings("ignore")
    from offbench.recipes import kitchen, kitchen_demo

    items = ([f"kitchen_demo.FUNNEL={a.funnel}"] if a.funnel is not None else []) + a.set
    try:  # a candidate (docs/kitchen.md "Session 7", "Session 9"): no row
        sets = set_constants(items, {"kitchen": kitchen, "kitchen_demo": kitchen_demo})
    except ValueError as e:
        p.error(str(e))
    a.no_write = a.no_write or bool(sets)
    label = f"recipe v{kitchen.RECIPE_VERSION}" + (f" with {', '.join(sets)}" if sets else "")
    command = "scripts/calibrate_kitchen.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    today = datetime.date.today().isoformat()
    proxy_of_recipe = {}
    for scale in a.scale if a.scale is not None else [kitchen.STYLE_SCALE]:
        if a.demos > 0:
            r = demonstrator(a.demos, scale, a.seed)
            print(
                f"demonstrator, scale {scale}: {r['success']}/{a.demos} complete sequences done within "
                f"{kitchen.DEMO_STEPS} steps, mean tasks {r['tasks']:.2f}, mean length {r['length']:.0f} "
                f"({r['s']:.0f} s)",
                flush=True,
            )
        for kind in a.kinds if a.episodes > 0 else ():
            r = proxy(kind, a.episodes, a.draws, scale, a.seed)
            print(
                f"proxy {kind:8s} scale {scale:4.2f} K {a.draws} episodes {a.episodes}: {r['proxy_score']:5.1f} "
                f"(D4RL BC {D4RL_BC[kind]}; tasks per episode {r['tasks']}; {r['seconds']} s)",
                flush=True,
            )
            if scale == kitchen.STYLE_SCALE:
                proxy_of_recipe[kind] = r["proxy_score"]
    if a.bc:
        bc = run_bc(a.kinds, a.bc_steps, a.bc_seeds, a.bc_eval_episodes, a.results, a.build_size, a.build_seeds)
    else:
        bc = {}
    for kind in a.kinds:
        row = {
            "dataset": f"kitchen-{kind}-v0",
            "recipe_version": kitchen.RECIPE_VERSION,
            "proxy_success": proxy_of_recipe.get(kind, ""),
            "command": command,
            "date": today,
        }
        if kind in bc:
            b = bc[kind]
            print(
                f"BC on kitchen-{kind}-v0 ({label}, {b['size'] or 'full'} transitions), "
                f"{a.bc_steps} steps, {a.bc_seeds} seeds, {a.bc_eval_episodes} episodes each: {b['bc_score']} "
                f"+- {b['bc_sd']} (runs {b['bc_scores']}; per build {b['build_means']}; D4RL BC {D4RL_BC[kind]}); "
                f"the builds' own demos within {kitchen.EPISODE_STEPS} steps {b['demo_scores']}",
                flush=True,
            )
            row.update(
                bc_score=b["bc_score"],
                bc_sd=b["bc_sd"],
                steps=a.bc_steps,
                seeds=a.bc_seeds,
                eval_episodes=a.bc_eval_episodes,
                data_seeds=" ".join(str(x) for x in a.build_seeds),
                obs_dim=b["obs_dim"],
            )
        if not a.no_write and (kind in bc or kind in proxy_of_recipe):
            write_row(row)
    if not a.no_write and (bc or proxy_of_recipe):
        print(f"rows written to {TABLE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
