"""Which Kitchen subtasks does a trained policy complete, and how close does it get to the ones it does not?

    nice .venv/bin/python scripts/kitchen_rollout.py RUN_DIR [--seeds 0 1] [--episodes 3] [--trace microwave]

RUN_DIR is a finished Kitchen run's directory (``results/kitchen/<dataset>/<algo>/<variant>``, its records
``seed_*.json`` and its final checkpoint ``checkpoint-seeds*``); MINARI_DATASETS_PATH must hold the dataset
it trained on. The policy is restored with offbench's own functions (``training.prepare`` resolves the run's
data and config; ``training.from_run`` checks the checkpoint as ``--from`` does: a finished offline run of the
same algorithm, data and config; ``records.checkpoint.load``) and rolled out
deterministically from the evaluation's own resets (``episodes.eval_reset_seed``) in the evaluation env
(``episodes.env_factory_for``). Per episode it prints the return, the step at which each subtask completed
(FrankaKitchen-v1's ``step_task_completions``) and, for each subtask left, the end effector's closest
approach to that subtask's site after the last completion (metres) and its step.

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


def restore(run_dir: Path):
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
        eval_backend="host",
    )  # fmt: skip
    prep = prepare(opts, say=lambda s: None)
    ck = from_checkpoint(str(run_dir), seeds, flag=FLAG)  # a finished offline run's checkpoint of these seeds
    check_from_config(prep, checkpoint.read_info(ck), ck.parent, flag=FLAG)  # same algorithm, data and config
    states, keys = init_seeds(prep.agent.init, seeds)
    tree, info = checkpoint.load(ck, {"states": states, "keys": keys})
    return prep, tree["states"], seeds, int(info["step"])


def roller(prep, states, seeds: list):
    """``rollout(seed, episode) -> dict``: one evaluation episode of ``seed``'s policy; the policy's jitted act,
    the observation adapter and the env are made once for all episodes."""
    import jax.numpy as jnp
    import mujoco
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    from offbench.envs import ObsAdapter
    from offbench.evaluation.episodes import env_factory_for, eval_reset_seed
    from offbench.evaluation.evaluator import make_act_fn

    act = make_act_fn(prep.agent.act)
    adapter = ObsAdapter(prep.source.obs_keys, prep.obs_mean, prep.obs_std)
    env = env_factory_for(prep.source)()
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
    a = p.parse_args(argv)
    prep, states, seeds, step = restore(a.run_dir.resolve())
    print(f"{a.run_dir}: step {step}, seeds {seeds}, dataset {prep.source.name}")
    rollout = roller(prep, states, seeds)
    for s in a.seeds or seeds:
        for j in range(a.episodes):
            r = rollout(s, j, a.trace, a.trace_steps)
            print(
                f"seed {s} episode {j}: return {r['return']:g} in {r['length']} steps; completed at "
                f"{r['completed_at']}; closest approach to the ones left (m, step): {r['closest_missed']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
