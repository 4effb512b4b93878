"""Which Kitchen subtasks does a trained policy complete, and how close does it get to the ones it does not?

    nice .venv/bin/python scripts/kitchen_rollout.py RUN_DIR [--seeds 0 1] [--episodes 3] [--trace microwave]
    nice .venv/bin/python scripts/kitchen_rollout.py RUN_DIR --fit [--fit-on OTHER_MINARI_DIR] --episodes 0
    nice .venv/bin/python scripts/kitchen_rollout.py RUN_DIR --episodes 10 --env d4rl   # or --env noise=0.1
    nice .venv/bin/python scripts/kitchen_rollout.py RUN_DIR --episodes 10 --max-steps 400

RUN_DIR is a finished Kitchen run's directory (``results/kitchen/<dataset>/<algo>/<variant>``, its records
``seed_*.json`` and its final checkpoint ``checkpoint-seeds*``); MINARI_DATASETS_PATH must hold the dataset
it trained on. The policy is restored with offbench's own functions (``training.prepare`` resolves the run's
data and config; ``training.from_run`` checks the checkpoint as ``--from`` does: a finished offline run of the
same algorithm, data and config; ``records.checkpoint.load``) and rolled out
deterministically from the evaluation's own resets (``episodes.eval_reset_seed``) in the evaluation env
(``episodes.env_factory_for``). Per episode it prints the return, the step at which each subtask completed
(FrankaKitchen-v1's ``step_task_completions``) and, for each subtask left, the end effector's closest
approach to that subtask's site after the last completion (metres) and its step.

``--env`` rolls the policy out elsewhere and prints its score (100 x tasks / 4): ``noise=R`` FrankaKitchen-v1 at
``robot_noise_ratio`` R, ``d4rl`` offbench's port of D4RL's kitchen env, its observation noise included
(docs/kitchen.md "Session 11 of wave 3": how much D4RL's noise costs a policy trained without it).

``--max-steps N`` (with ``--env data``) rolls the run's evaluation env out N steps instead of its limit and prints
both scores: the tasks done by the limit (the evaluation's) and by step N (how much a slow policy leaves undone).

``--fit`` prints, per seed and per demo, how closely the deterministic policy reproduces the data's actions
(mean squared error per arm joint; the data's own action noise, ``kitchen.ACTION_NOISE`` = 0.1, is a floor of
about 0.01); ``--fit-on DIR`` does the same on another build of the run's dataset (a MINARI_DATASETS_PATH
folder), marking the demos that are not in the run's own data ("new"): how the policy does on demos it did not
see. ``--set KEY=VALUE`` as the run was trained (``offbench run --set``).

Written for issue 29 (docs/kitchen.md "Recipe v3": BC on the version-2 demonstrator's data completes the
microwave and the kettle and misses the light switch by 7-15 cm).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from offbench.recipes.kitchen_demo import SITES  # the subtasks' handle sites, as the demonstrator aims at them

FLAG = "kitchen_rollout.py RUN_DIR:"  # what from_run's messages name (they say --from for offbench run)


def restore(run_dir: Path, overrides: dict | None = None):
    """The run's prepared data and agent, and its final policy states (checked as ``--from`` checks a run)."""
    from offbench.records import checkpoint
    from offbench.training.from_run import check_from_config, from_checkpoint
    from offbench.training.prepare import RunOptions, prepare
    from offbench.training.step import init_seeds

    rec = json.loads((run_dir / "seed_0.json").read_text())
    seeds = list(rec["seeds_in_run"])
    opts = RunOptions(
        algo=rec["algo"], suite=rec["suite"], dataset=rec["data"]["metadata"]["minari_id"], seeds=len(seeds),
        seed=seeds[0], steps=int(rec["steps"]), results=str(run_dir.parents[3]), progress=False, eval_workers=0,
        eval_backend="host", overrides=overrides or {},
    )  # fmt: skip
    prep = prepare(opts, say=lambda s: None)
    ck = from_checkpoint(str(run_dir), seeds, flag=FLAG)  # a finished offline run's checkpoint of these seeds
    check_from_config(prep, checkpoint.read_info(ck), ck.parent, flag=FLAG)  # same algorithm, data and config
    states, keys = init_seeds(prep.agent.init, seeds)
    tree, info = checkpoint.load(ck, {"states": states, "keys": keys})
    return prep, tree["states"], seeds, int(info["step"])


def demo_ids(arrays: dict) -> np.ndarray:
    """Each transition's demo (episode) index: an episode ends at a terminal or a truncation."""
    ends = np.asarray(arrays["terminals"], bool) | np.asarray(arrays.get("timeouts", arrays["terminals"]), bool)
    return np.concatenate([[0], np.cumsum(ends)[:-1]]).astype(int)


def fit(prep, states, seeds: list, arrays: dict, seen: dict | None = None) -> list:
    """Per seed: the policy's deterministic action against the data's, as mean squared errors per arm joint
    (7) and per finger (2), over all transitions and per demo; ``seen`` (the run's own arrays) marks the
    demos of ``arrays`` most of whose observations are not in it as new."""
    import jax.numpy as jnp

    from offbench.evaluation.evaluator import make_act_fn

    act = make_act_fn(prep.agent.act)
    obs, ep = np.asarray(arrays["observations"], np.float32), demo_ids(arrays)
    x_in = obs if prep.obs_mean is None else ((obs - prep.obs_mean) / prep.obs_std).astype(np.float32)  # as trained
    demos = int(ep.max()) + 1
    new = np.zeros(demos, bool)
    if seen is not None:  # a demo is new when most of its observations are not in the run's data
        known = {o.tobytes() for o in np.asarray(seen["observations"], np.float32)}
        hit = np.array([o.tobytes() in known for o in obs])
        new = np.array([hit[ep == k].mean() < 0.5 for k in range(demos)])
    preds = np.asarray(act(states, jnp.asarray(np.broadcast_to(x_in, (len(seeds), *obs.shape)))))  # every seed
    out = []
    for i, s in enumerate(seeds):
        err = (preds[i] - np.asarray(arrays["actions"])) ** 2
        arm, fingers = err[:, :7].mean(1), err[:, 7:].mean(1)
        per = [float(arm[ep == k].mean()) for k in range(demos)]
        out.append({"seed": s, "arm": float(arm.mean()), "fingers": float(fingers.mean()), "per_demo": per, "new": new})
    return out


def print_fit(rows: list, where: str) -> None:
    for r in rows:
        per = " ".join(f"{e:.4f}{'*' if n else ''}" for e, n in zip(r["per_demo"], r["new"]))
        new = [e for e, n in zip(r["per_demo"], r["new"]) if n]
        tail = f"; new demos (*) {np.mean(new):.4f}" if new else ""
        print(f"fit on {where}, seed {r['seed']}: arm {r['arm']:.4f}, fingers {r['fingers']:.4f}{tail}; per demo {per}")


def _longer(factory, limit: int | None):
    """The evaluation env's factory with its step limit raised to ``limit`` (None: as it is)."""
    import dataclasses

    if limit is None:
        return factory
    if factory.spec_json:  # a rebuilt dataset's eval_env_spec carries the limit
        spec = json.loads(factory.spec_json)
        return dataclasses.replace(factory, spec_json=json.dumps({**spec, "max_episode_steps": int(limit)}))
    return dataclasses.replace(factory, max_episode_steps=int(limit))


def eval_env(prep, where: str, limit: int | None = None):
    """The env to roll out in and the observation the policy reads: ``data`` the run's own evaluation env;
    ``noise=R`` that env at ``robot_noise_ratio`` R; ``d4rl`` offbench's registration of D4RL's kitchen env for the
    dataset (``Task.d4rl_env_id``: its noise on robot and objects, its 60-d observation, of which the policy reads
    the 30 joint positions: a rebuilt dataset's view). ``limit``: the run's env with a longer step limit."""
    from offbench import envs
    from offbench.evaluation.episodes import env_factory_for

    src = prep.source
    adapter = envs.ObsAdapter(src.obs_keys, prep.obs_mean, prep.obs_std)
    if where == "data":
        return _longer(env_factory_for(src), limit)(), adapter
    if where.startswith("noise="):
        kwargs = {**src.built_env_kwargs, "robot_noise_ratio": float(where[len("noise=") :])}
        return envs.make_env(src.env_id, kwargs, src.max_episode_steps), adapter
    mean, std = (0.0, 1.0) if prep.obs_mean is None else (prep.obs_mean, prep.obs_std)
    return envs.make_env(src.task.d4rl_env_id), lambda o: (np.asarray(o)[:30] - mean) / std


def roller(prep, states, seeds: list, where: str = "data", limit: int | None = None):
    """``rollout(seed, episode) -> dict``: one evaluation episode of ``seed``'s policy in :func:`eval_env`'s env;
    the policy's jitted act, the observation adapter and the env are made once for all episodes."""
    import jax.numpy as jnp
    import mujoco
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    from offbench.evaluation.episodes import eval_reset_seed
    from offbench.evaluation.evaluator import make_act_fn

    act = make_act_fn(prep.agent.act)
    env, adapter = eval_env(prep, where, limit)
    m, d = env.unwrapped.model, env.unwrapped.data
    site_id = {k: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, n) for k, n in SITES.items()}
    hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "end_effector")

    def rollout(seed: int, episode: int, trace: str | None = None, steps: int = 120) -> dict:
        """One episode; with ``trace`` (a subtask) it also prints, for the first ``steps`` steps, the hand's
        offset from that subtask's site (cm), the policy's two finger commands, the finger joints, and the
        subtask's state as the env judges it (its ``OBS_ELEMENT_INDICES`` of qpos, their distance to
        ``OBS_ELEMENT_GOALS``: done under ``BONUS_THRESH``)."""
        o, _ = env.reset(seed=eval_reset_seed(seed, episode))
        tasks = list(env.unwrapped.tasks_to_complete)
        done_at, dist, ret, t = {}, {k: [] for k in tasks}, 0.0, 0
        while True:
            ob = adapter(o)
            x = np.zeros((len(seeds), 1, ob.shape[0]), np.float32)
            x[seeds.index(seed), 0] = ob
            a = np.asarray(act(states, jnp.asarray(x)))[seeds.index(seed), 0]
            if trace and t < steps:
                off = 100 * (d.site_xpos[hand] - d.site_xpos[site_id[trace]])
                state = d.qpos[OBS_ELEMENT_INDICES[trace]]
                print(
                    f"  step {t:3d}: hand - {trace} {np.linalg.norm(off):5.1f} cm {np.round(off, 1)}, fingers "
                    f"command {np.round(a[7:9], 2)} at {np.round(d.qpos[7:9], 3)}, state {np.round(state, 3)} "
                    f"(goal distance {np.linalg.norm(state - OBS_ELEMENT_GOALS[trace]):.3f})"
                )
            o, r, term, trunc, info = env.step(a)
            ret, t = ret + float(r), t + 1
            done_at.update({k: t for k in info.get("step_task_completions", [])})
            for k in tasks:
                dist[k].append(float(np.linalg.norm(d.site_xpos[hand] - d.site_xpos[site_id[k]])))
            if term or trunc:
                break
        last = max(done_at.values(), default=0)
        missed = {}
        for k in (k for k in tasks if k not in done_at):
            i = last + int(np.argmin(dist[k][last:]))
            missed[k] = (round(dist[k][i], 3), i + 1)
        return {"return": ret, "length": t, "completed_at": done_at, "closest_missed": missed}

    return rollout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds of the run to roll out (default: all)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--trace", choices=sorted(SITES), default=None, help="print each step near this subtask")
    p.add_argument("--trace-steps", type=int, default=120, help="steps traced from the start of an episode")
    p.add_argument("--fit", action="store_true", help="per-demo action errors on the run's own data")
    p.add_argument("--fit-on", type=Path, default=None, help="also on another build (its MINARI_DATASETS_PATH)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as the run was trained")
    p.add_argument("--env", default="data", help="data (the run's evaluation env), noise=R, or d4rl (eval_env)")
    p.add_argument("--max-steps", type=int, default=None, help="with --env data: roll out this long; also scores it")
    a = p.parse_args(argv)
    if a.max_steps is not None and a.env != "data":  # refused before the run is restored
        p.error("--max-steps goes with --env data (the run's own evaluation env)")
    from offbench.config import parse_overrides

    prep, states, seeds, step = restore(a.run_dir.resolve(), parse_overrides(a.set))
    print(f"{a.run_dir}: step {step}, seeds {seeds}, dataset {prep.source.name}")
    shown = a.seeds or seeds
    own = prep.source.dataset.arrays() if a.fit or a.fit_on is not None else None
    if a.fit:
        print_fit([r for r in fit(prep, states, seeds, own) if r["seed"] in shown], "its own data")
    if a.fit_on is not None:
        from offbench.data.sources import resolve
        from offbench.data.staging import minari_dir
        from offbench.data.suites import get_suite

        with minari_dir(a.fit_on.resolve()):  # another build of the same dataset
            other = resolve(get_suite(prep.opts.suite), prep.source.name, prep.config).dataset.arrays()
        print_fit([r for r in fit(prep, states, seeds, other, seen=own) if r["seed"] in shown], str(a.fit_on))
    rollout, scores, longer = roller(prep, states, seeds, a.env, a.max_steps), [], []
    limit = prep.source.max_episode_steps
    for s in a.seeds or seeds:
        rets, rets_long = [], []
        for j in range(a.episodes):
            r = rollout(s, j, a.trace, a.trace_steps)
            rets.append(sum(t <= limit for t in r["completed_at"].values()) if a.max_steps else r["return"])
            rets_long.append(r["return"])
            print(
                f"seed {s} episode {j}: return {r['return']:g} in {r['length']} steps; completed at "
                f"{r['completed_at']}; closest approach to the ones left (m, step): {r['closest_missed']}",
                flush=True,
            )
        if rets:
            scores.append(25.0 * np.mean(rets))  # D4RL's references 0 / 4 tasks
            longer.append(25.0 * np.mean(rets_long))
    if scores:
        print(
            f"score in env {a.env}: {np.mean(scores):.1f} +- {np.std(scores):.1f} (per seed {np.round(scores, 1).tolist()})"
        )
    if scores and a.max_steps:
        print(f"score within {a.max_steps} steps: {np.mean(longer):.1f} (per seed {np.round(longer, 1).tolist()})")


if __name__ == "__main__":
    main()
