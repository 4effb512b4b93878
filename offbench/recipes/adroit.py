"""D4RL Adroit recipes (``{door,pen,hammer,relocate}-{human,expert,cloned}-v1``) rebuilt in
``AdroitHand*-v1`` from ``../shared/data``.

* door-human: the 25 human demonstrations (``demos/door-human.npz``) replayed open-loop from their
  recorded start states (actions clipped to [-1, 1]), storing what the environment returns (6,729
  transitions; each demo ends by a time limit, not a terminal).
* expert: the DAPG policy with actions sampled with its ``log_std`` (D4RL: 5000 episodes).
* cloned: D4RL's ``scripts/generation/hand_dapg_combined.py``: N = horizon x 5000 transitions (pen 500k,
  the others 1M); the first half is rollouts of a BC policy trained on the demonstrations (here the
  project's own BC, ``algorithms/bc.py``, its Gaussian sampled), cut at the first episode end at or after
  N/2; the rest is the demonstrations tiled in order (the last one cut). For door the demonstrations are the
  human ones; pen/hammer/relocate have no human data here, so 25 episodes of the DAPG expert (sampled) stand
  in: those sets are labelled "rebuilt (expert demos)" and the provenance says so.
* pen/hammer/relocate-human: not buildable (no human demonstrations for them in ../shared/data).

Reference returns: 100 episodes of uniform-random actions and 100 of the DAPG expert with its actions
sampled as the data samples them, in the evaluation environment (D4RL's horizons: pen 100 steps, the
others 200), seeded; stored with their spread and episode count.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from offbench.recipes import common, references, writer
from offbench.recipes.policy import load_policy
from offbench.recipes.recipes import builder, mark_unbuildable, register_recipe

VERSION = 2  # 1: mean-action expert references (10/5 episodes), cloned 1M for pen, demos before BC rollouts
EXPERT_LABEL = "rebuilt (expert demos)"  # cloned sets whose "human" half is expert episodes
TASKS = {  # name: (env id, horizon, expert policy)
    "door": ("AdroitHandDoor-v1", 200, "door-dapg-expert"),
    "pen": ("AdroitHandPen-v1", 100, "pen-dapg-expert"),
    "hammer": ("AdroitHandHammer-v1", 200, "hammer-dapg-expert"),
    "relocate": ("AdroitHandRelocate-v1", 200, "relocate-dapg-expert"),
}
EXPERT_EPISODES = 5000  # D4RL: expert and cloned sets are horizon x 5000 transitions
DEMO_STANDIN_EPISODES = 25  # expert episodes standing in for missing human demos
BC_STEPS, BC_STEPS_SMALL = 20_000, 200


def eval_spec(task: str):
    import gymnasium as gym

    from offbench.envs import _register_all

    env_id, horizon, _ = TASKS[task]
    _register_all()
    return dataclasses.replace(gym.spec(env_id), max_episode_steps=horizon)


def _factory(task: str, max_episode_steps: int | None = None):
    from offbench.envs import make_env

    env_id, horizon, _ = TASKS[task]
    return lambda: make_env(env_id, {}, max_episode_steps or horizon)


def refs_for(task: str, behavior_dir: Path, n: int) -> dict:
    env_id, horizon, expert = TASKS[task]
    pol = load_policy(behavior_dir, expert)
    return references.reference_returns(
        {"env_id": env_id, "horizon": horizon},
        _factory(task),
        common.PolicyBehavior(pol, True),
        expert,
        n,
        expert_action="sampled (log_std)",
    )


def replay_demos(behavior_dir: Path, size: int | None = None) -> tuple[list[dict], dict]:
    """The door human demos stepped in ``AdroitHandDoor-v1`` from their recorded start states."""
    path = Path(behavior_dir) / "demos" / "door-human.npz"
    if not path.exists():
        from offbench.errors import OffbenchError

        raise OffbenchError(f"{path} does not exist; --behavior-dir must hold demos/door-human.npz")
    z = np.load(path, allow_pickle=False)
    lengths = z["episode_lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    env = _factory("door", int(lengths.max()) + 1)()
    out, total = [], 0
    try:
        for i, (s, L) in enumerate(zip(starts, lengths)):
            if size is not None and total >= size:
                break
            L = int(L) if size is None else int(min(L, size - total))
            init = {"qpos": z["init_qpos"][i], "qvel": z["init_qvel"][i], "door_body_pos": z["init_door_body_pos"][i]}
            o, _ = env.reset(seed=i, options={"initial_state_dict": init})
            obs, acts, rews, terms = [o], [], [], []
            for a in z["actions"][s : s + L]:
                a = np.clip(a, -1.0, 1.0).astype(np.float32)
                o, r, term, trunc, _ = env.step(a)
                obs.append(o), acts.append(a), rews.append(r), terms.append(term)
                if term:
                    break
            trunc = np.zeros(len(acts), bool)
            if not terms[-1]:
                trunc[-1] = True  # the demo ended (time limit / operator), not a terminal state
            out.append(
                {
                    "observations": np.stack(obs),
                    "actions": np.stack(acts),
                    "rewards": np.array(rews),
                    "terminations": np.array(terms, bool),
                    "truncations": trunc,
                    "return": float(np.sum(rews)),
                    "complete": True,
                }
            )
            total += len(acts)
    finally:
        env.close()
    info = {
        "file": "demos/door-human.npz",
        "episodes_recorded": int(len(lengths)),
        "recorded_return_mean": float(np.mean([z["rewards"][s : s + L].sum() for s, L in zip(starts, lengths)])),
        "replayed": "open-loop from init_qpos/init_qvel/init_door_body_pos, actions clipped to [-1, 1]",
    }
    return out, info


class BCBehavior(common.Behavior):
    """A policy trained by the project's BC, acting with its Gaussian sampled (jitted, batched)."""

    def __init__(self, agent, state, seed: int, deterministic: bool = False):
        import jax

        self.act_fn = jax.jit(lambda s, o, k: agent.act(s, o, k, deterministic))
        self.state = state
        self.key = jax.random.PRNGKey(seed)

    def act(self, obs_list, rng):
        import jax

        self.key, k = jax.random.split(self.key)
        return np.asarray(self.act_fn(self.state, np.stack(obs_list).astype(np.float32), k), np.float64)


def train_bc(episodes: list[dict], steps: int, seed: int, algo: str = "bc", small: bool = False):
    """Train the registered ``bc`` algorithm on the episodes' (obs, action) pairs; returns (agent, state)."""
    import jax

    from offbench import registry
    from offbench.config import resolve
    from offbench.training.step import make_train_step

    algorithm = registry.get(algo)
    # a `--size small` build trains a tiny network (smoke tests); a real build uses BC's own config
    config = resolve(
        algorithm.default_config,
        algorithm.name,
        "adroit",
        None,
        {"hidden_dims": [32, 32], "batch_size": 64} if small else {},
    )
    obs = np.concatenate([e["observations"][:-1] for e in episodes]).astype(np.float32)
    act = np.concatenate([e["actions"] for e in episodes]).astype(np.float32)
    spec = registry.Spec(obs_dim=obs.shape[1], act_dim=act.shape[1], total_steps=max(1, steps))
    agent = algorithm.make(config, spec)
    n = len(obs)
    data = {
        "observations": jax.numpy.asarray(obs),
        "actions": jax.numpy.asarray(act),
        "rewards": jax.numpy.zeros(n),
        "next_observations": jax.numpy.asarray(obs),
        "terminals": jax.numpy.zeros(n),
    }
    step = make_train_step(agent.update, int(config["batch_size"]))

    @jax.jit
    def train(state, key):
        (state, key), metrics = jax.lax.scan(lambda c, _: step(c, data, n), (state, key), None, length=steps)
        return state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

    key = jax.random.PRNGKey(seed)
    k_init, k_train = jax.random.split(key)
    state, metrics = train(jax.jit(agent.init)(k_init), k_train)
    return agent, state, {k: float(v) for k, v in metrics.items()}, config


def _repeat_to(episodes: list[dict], size: int) -> list[dict]:
    out, total, i = [], 0, 0
    while total < size:
        e = episodes[i % len(episodes)]
        t = min(len(e["actions"]), size - total)
        if t < len(e["actions"]):
            e = common.cut_episode(e, t)
        out.append(e)
        total += t
        i += 1
    return out


def build(task: str, kind: str, size, seed: int, behavior_dir: Path, progress: bool = False) -> str:
    env_id, horizon, expert = TASKS[task]
    name = f"{task}-{kind}-v1"
    default = {"human": 6729, "expert": EXPERT_EPISODES * horizon, "cloned": EXPERT_EPISODES * horizon}[kind]
    n = common.resolve_size(size, default)
    refs = refs_for(task, behavior_dir, n)
    spec = eval_spec(task)
    prov = {"seed": seed, "size": n, "env_id": env_id, "horizon": horizon}
    if kind == "human":
        eps, info = replay_demos(behavior_dir, n)
        prov["behaviour"] = {"demos": info, **common.episode_stats(eps)}
    elif kind == "expert":
        pol = load_policy(behavior_dir, expert)
        eps = common.collect(
            _factory(task), common.PolicyBehavior(pol, stochastic=True), n, seed, progress=progress, desc=name
        )
        prov["behaviour_policies"] = [
            {**common.policy_file_info(pol), "action": "sampled (log_std)", **common.episode_stats(eps)}
        ]
    else:  # cloned
        small = n <= common.SMALL_SIZE
        if task == "door":
            demos, dinfo = replay_demos(behavior_dir, n if small else None)
            dinfo = {"demos": dinfo, "kind": "human"}
        else:
            pol = load_policy(behavior_dir, expert)
            k = 2 if small else DEMO_STANDIN_EPISODES
            demos = common.collect(
                _factory(task), common.PolicyBehavior(pol, stochastic=True), 10**9, seed + 7, max_episodes=k, n_envs=k
            )
            dinfo = {
                "kind": "expert episodes standing in for human demos (none for this task here)",
                **common.policy_file_info(pol),
                "episodes": k,
            }
        steps = BC_STEPS_SMALL if small else BC_STEPS
        agent, state, metrics, config = train_bc(demos, steps, seed, small=small)
        half = min(n, -(-(n // 2) // horizon) * horizon)  # the first episode end at or after N/2
        rollouts = common.collect(
            _factory(task), BCBehavior(agent, state, seed), half, seed, progress=progress, desc=f"{name} (BC rollouts)"
        )
        half = sum(len(e["actions"]) for e in rollouts)
        demo_part = _repeat_to(demos, n - half) if n > half else []
        eps = rollouts + demo_part
        prov["behaviour"] = {
            "demonstrations": {**dinfo, **common.episode_stats(demo_part)},
            "bc_policy": {
                "algorithm": "bc (offbench algorithms/bc.py)",
                "gradient_steps": steps,
                "seed": seed,
                "final_metrics": metrics,
                "config": json.loads(json.dumps(config, default=str)),
                "action": "sampled from its Gaussian",
                **common.episode_stats(rollouts),
            },
            "mix": "BC rollouts to the first episode end at or after N/2, then the "
            "demonstrations tiled in order (hand_dapg_combined.py)",
        }
    return writer.write(
        name,
        eps,
        env_id,
        spec,
        refs,
        prov,
        f"{name} rebuilt locally with the D4RL recipe ({kind}) in {env_id}; not D4RL's data",
    )


def _register():
    for task, (env_id, horizon, _) in TASKS.items():
        kinds = ("human", "expert", "cloned") if task == "door" else ("expert", "cloned")
        for kind in kinds:
            default = {"human": 6729, "expert": EXPERT_EPISODES * horizon, "cloned": EXPERT_EPISODES * horizon}[kind]
            label = EXPERT_LABEL if kind == "cloned" and task != "door" else "rebuilt"
            register_recipe(
                f"{task}-{kind}-v1",
                "adroit",
                builder(build, task, kind),
                default,
                description=f"{kind} data in {env_id} (D4RL recipe)",
                label=label,
                version=VERSION,
            )
        if task != "door":
            mark_unbuildable(f"{task}-human-v1", "no human demonstrations for it in ../shared/data (only door's)")


_register()
