"""D4RL locomotion recipes (``{hopper,halfcheetah,walker2d}-{random,medium,medium-replay,medium-expert,
expert}-v2``) rebuilt in ``Hopper-v5`` / ``HalfCheetah-v5`` / ``Walker2d-v5`` from ``../shared/data``.

* random: uniform actions, 1M transitions.
* medium / expert: the medium policy (about a third of expert return) / the expert (``*-tqc``) with the
  deterministic mean action, 1M transitions.
* medium-replay: the TRPO snapshot ladder in training order up to the medium policy (snapshots sampled
  with their ``log_std``, as a training replay buffer holds exploratory actions; the medium policy last),
  equal shares of D4RL's medium-replay size (hopper 402k, halfcheetah 202k, walker2d 302k).
* medium-expert: the medium data followed by the expert data (2M, as D4RL concatenated them).

Reference returns: uniform-random actions and the expert, measured in the same environment (seeded).
"""
from __future__ import annotations

import re
from pathlib import Path

from offbench.data.build import common
from offbench.data.build.policy import load_policy
from offbench.data.build.recipes import behavior_dir_or_error, register_recipe

ENVS = {  # d4rl name: (env id, medium policy, expert policy, medium-replay size)
    "hopper": ("Hopper-v5", "hopper-sac", "hopper-tqc", 402_000),
    "halfcheetah": ("HalfCheetah-v5", "halfcheetah-trpo-iter0000500", "halfcheetah-tqc", 202_000),
    "walker2d": ("Walker2d-v5", "walker2d-trpo-iter0000080", "walker2d-tqc", 302_000),
}
SIZE = 1_000_000
KINDS = ("random", "medium", "medium-replay", "medium-expert", "expert")


def _factory(env_id: str):
    from offbench.envs import make_env
    return lambda: make_env(env_id)


def ladder(behavior_dir: Path, env: str) -> list[str]:
    """The snapshot ladder up to the medium policy, in training order (see module doc)."""
    _, medium, _, _ = ENVS[env]
    snaps = sorted(p.stem for p in (Path(behavior_dir) / "policies").glob(f"{env}-trpo-iter*.npz"))
    snaps.sort(key=lambda s: int(re.search(r"iter(\d+)", s).group(1)))
    if medium in snaps:
        return snaps[: snaps.index(medium) + 1]
    med_ret = load_policy(behavior_dir, medium).measured_return
    below = [s for s in snaps if load_policy(behavior_dir, s).measured_return < med_ret]
    # training order, stopping at the first snapshot that is already better than the medium policy
    out = []
    for s in snaps:
        if s not in below:
            break
        out.append(s)
    return out + [medium]


def refs_for(env: str, behavior_dir: Path, n: int) -> dict:
    env_id, _, expert, _ = ENVS[env]
    pol = load_policy(behavior_dir, expert)
    return common.reference_returns({"env_id": env_id}, _factory(env_id), common.PolicyBehavior(pol), expert, n)


def _policy_part(env_id, behavior_dir, name, size, seed, progress, desc, stochastic=False, first_episode=0):
    pol = load_policy(behavior_dir, name)
    stochastic = stochastic and pol.log_std is not None
    eps = common.collect(_factory(env_id), common.PolicyBehavior(pol, stochastic), size, seed,
                         progress=progress, desc=desc, first_episode=first_episode)
    info = {**common.policy_file_info(pol), "action": "sampled (log_std)" if stochastic else "mean",
            **common.episode_stats(eps)}
    return eps, info


def build(env: str, kind: str, size, seed: int, behavior_dir: Path, progress: bool = False) -> str:
    env_id, medium, expert, replay_size = ENVS[env]
    name = f"{env}-{kind}-v2"
    default = replay_size if kind == "medium-replay" else (2 * SIZE if kind == "medium-expert" else SIZE)
    n = common.resolve_size(size, default)
    refs = refs_for(env, behavior_dir, n)
    parts = []
    if kind == "random":
        e = _factory(env_id)()
        beh = common.UniformBehavior(e.action_space.low, e.action_space.high)
        e.close()
        eps = common.collect(_factory(env_id), beh, n, seed, progress=progress, desc=name)
        parts.append({"policy": "uniform random actions", **common.episode_stats(eps)})
    elif kind in ("medium", "expert"):
        eps, info = _policy_part(env_id, behavior_dir, medium if kind == "medium" else expert, n, seed,
                                 progress, name)
        parts.append(info)
    elif kind == "medium-expert":
        half = n // 2
        eps, info = _policy_part(env_id, behavior_dir, medium, half, seed, progress, f"{name} (medium)")
        eps2, info2 = _policy_part(env_id, behavior_dir, expert, n - half, seed + 1, progress, f"{name} (expert)")
        eps = eps + eps2
        parts += [info, info2]
    elif kind == "medium-replay":
        names = ladder(behavior_dir, env)
        eps = []
        share, rest = divmod(n, len(names))
        for i, pname in enumerate(names):
            m = share + (1 if i < rest else 0)
            if m == 0:
                continue
            e, info = _policy_part(env_id, behavior_dir, pname, m, seed * 1000 + i, progress,
                                   f"{name} [{i + 1}/{len(names)}] {pname}", stochastic=True)
            eps += e
            parts.append(info)
    else:  # pragma: no cover - registration only uses KINDS
        raise ValueError(kind)
    prov = {"seed": seed, "size": n, "env_id": env_id, "behaviour_policies": parts,
            "construction": __doc__.split("\n\n")[1].strip()}
    return common.write(name, eps, env_id, env_id, refs, prov,
                        f"{name} rebuilt locally with the D4RL recipe ({kind}) in {env_id}; not D4RL's data")


def _register():
    for env, (env_id, *_rest, replay_size) in ENVS.items():
        for kind in KINDS:
            size = replay_size if kind == "medium-replay" else (2 * SIZE if kind == "medium-expert" else SIZE)
            register_recipe(f"{env}-{kind}-v2", "locomotion",
                            (lambda e, k: lambda size=None, seed=0, behavior_dir=None, progress=False:
                             build(e, k, size, seed, behavior_dir_or_error(behavior_dir), progress))(env, kind),
                            size, description=f"{kind} data in {env_id} (D4RL recipe)")


_register()
