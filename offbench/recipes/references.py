"""Reference returns of a rebuilt dataset: the mean return of uniform-random actions (``ref_min_score``) and of
the expert behaviour as the data samples it (``ref_max_score``) in the evaluation environment, with their spread
and episode counts; computed once per environment, policy and settings and cached on disk
(``$OFFBENCH_CACHE_DIR``)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from offbench.recipes.common import SMALL_SIZE, Behavior, PolicyBehavior, UniformBehavior, collect, policy_file_info

# Reference returns (issue 13): ref_min from 100 uniform-random episodes, as D4RL's REF_MIN_SCORE ("the
# average returns of a random policy ... over 100 episodes", D4RL paper, Appendix); ref_max from 100 episodes
# of the expert *as the data samples it* (sampled actions), both stored with their spread and count.
RANDOM_REF_EPISODES = 100
EXPERT_REF_EPISODES = 100
SMALL_REF_EPISODES = 2  # the same for `--size small` builds (tests, smoke runs; said in the metadata)


def ref_episodes(n: int) -> tuple[int, int]:
    """(random, expert) episodes for reference returns of a build of ``n`` transitions."""
    return (SMALL_REF_EPISODES, SMALL_REF_EPISODES) if n <= SMALL_SIZE else (RANDOM_REF_EPISODES, EXPERT_REF_EPISODES)


def cache_dir() -> Path:
    """``$OFFBENCH_CACHE_DIR`` (default ``~/.offbench/cache``)."""
    return Path(os.environ.get("OFFBENCH_CACHE_DIR", Path.home() / ".offbench" / "cache")).expanduser()


def cached(key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` once per ``key`` (a JSON-able dict: env, policy, episodes, seed, ...), kept on disk."""
    h = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    path = cache_dir() / "refs" / f"{h}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())["value"]
        except (ValueError, KeyError):
            pass
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "value": value}, default=float))
    os.replace(tmp, path)
    return value


def returns_of(env_factory: Callable, behavior: Behavior, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` whole episodes (reset seeds from ``seed``), all stepped together."""
    eps = collect(env_factory, behavior, size=10**9, seed=seed, n_envs=episodes, max_episodes=episodes)
    return [e["return"] for e in eps]


def reference_returns(
    env_key: dict,
    env_factory: Callable,
    expert: Behavior,
    expert_name: str,
    n: int,
    seed: int = 0,
    expert_action: str | None = None,
) -> dict:
    """``{"ref_min_score", "ref_max_score", ...}``: mean return of uniform-random actions and of the
    expert behaviour (``expert_action`` says how it acts, e.g. sampled) in the evaluation environment, seeded
    (random: seed, expert: seed + 1), with each side's std and episode count; cached on disk."""
    n_rand, n_exp = ref_episodes(n)

    def compute():
        env = env_factory()
        low, high = env.action_space.low, env.action_space.high
        env.close()
        rand = returns_of(env_factory, UniformBehavior(low, high), n_rand, seed)
        exp = returns_of(env_factory, expert, n_exp, seed + 1)
        return {
            "ref_min_score": float(np.mean(rand)),
            "ref_max_score": float(np.mean(exp)),
            "ref_min_std": float(np.std(rand)),
            "ref_max_std": float(np.std(exp)),
            "ref_min_episodes": len(rand),
            "ref_max_episodes": len(exp),
            "random_returns": rand,
            "expert_returns": exp,
            "expert": expert_name,
            "expert_action": expert_action,
            "seed": seed,
        }

    key = {
        "what": "refs",
        **env_key,
        "expert": expert_name,
        "n_random": n_rand,
        "n_expert": n_exp,
        "seed": seed,
        "expert_action": expert_action,
        "versions": _versions(),
    }
    if isinstance(expert, PolicyBehavior):  # a changed policy file is a different expert
        key["expert_sha256"] = policy_file_info(expert.policy)["sha256"]
    return cached(key, compute)


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for pkg in ("gymnasium", "gymnasium-robotics", "mujoco"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def reference_summary(refs: dict) -> dict:
    """The references' means, spreads and episode counts (what the metadata and the data card show)."""
    keys = (
        "ref_min_score",
        "ref_max_score",
        "ref_min_std",
        "ref_max_std",
        "ref_min_episodes",
        "ref_max_episodes",
        "expert",
        "expert_action",
    )
    return {k: refs.get(k) for k in keys}
