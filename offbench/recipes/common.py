"""Shared pieces of the recipes: sizes, behaviours and a vectorised collector of episodes (the reference returns
are in :mod:`offbench.recipes.references`, writing a build in :mod:`offbench.recipes.writer`).

The collector steps ``n_envs`` environments together and asks the behaviour for all their actions in
one call (one batched NumPy forward pass per step). It is deterministic given the seed: episode ``k``
(in start order) is reset with seed ``seed * 1_000_003 + k`` and the behaviour's noise comes from one
generator seeded with ``seed``; episodes are stored in start order and the dataset is cut to exactly
``size`` transitions (the last episode truncated, even while it is still running), as D4RL cut its buffers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError

SMALL = "small"
SMALL_SIZE = 2000  # transitions of a `--size small` build (tests, smoke checks)
N_ENVS = 16  # environments stepped together


def resolve_size(size, default_size: int) -> int:
    """``None`` -> the recipe's (D4RL) size, ``"small"`` -> :data:`SMALL_SIZE`, else a positive int."""
    if size is None:
        return int(default_size)
    if isinstance(size, str):
        if size.strip().lower() == SMALL:
            return min(SMALL_SIZE, int(default_size))
        try:
            size = int(float(size))
        except ValueError:
            raise OffbenchError(f"--size must be a number of transitions or 'small', not {size!r}") from None
    if int(size) < 1:
        raise OffbenchError("--size must be at least 1 transition")
    return int(size)


def is_small(size, default_size: int) -> bool:
    return resolve_size(size, default_size) <= SMALL_SIZE


def reset_seed(seed: int, k: int) -> int:
    return (int(seed) * 1_000_003 + int(k)) % (2**31 - 1)


class Behavior:
    """What the collector asks: ``start(slot, obs, env)`` when an episode starts in a slot;
    ``act(obs_list, rng) -> (n, act_dim)`` for the live slots (row ``i`` is slot ``self.live[i]``);
    ``observe(slot, obs, env)`` after each step."""

    live: list = []

    def start(self, slot: int, obs, env) -> None:
        pass

    def act(self, obs_list: list, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, slot: int, obs, env) -> None:
        pass


class PolicyBehavior(Behavior):
    """An ``offbench-mlp-policy/1`` policy (mean, or sampled with its ``log_std``)."""

    def __init__(self, policy, stochastic: bool = False):
        self.policy, self.stochastic = policy, stochastic

    def act(self, obs_list, rng):
        return self.policy(np.stack([np.asarray(o, np.float64) for o in obs_list]), rng, self.stochastic)


class UniformBehavior(Behavior):
    def __init__(self, low, high):
        self.low, self.high = np.asarray(low, np.float64), np.asarray(high, np.float64)

    def act(self, obs_list, rng):
        return rng.uniform(self.low, self.high, (len(obs_list), len(self.low)))


def _stack_obs(obs_list: list):
    if isinstance(obs_list[0], dict):
        return {k: _stack_obs([o[k] for o in obs_list]) for k in obs_list[0]}
    return np.stack([np.asarray(o) for o in obs_list])


def _copy_obs(o):
    if isinstance(o, dict):
        return {k: _copy_obs(v) for k, v in o.items()}
    return np.array(o, copy=True)


def collect(
    env_factory: Callable,
    behavior: Behavior,
    size: int,
    seed: int,
    *,
    n_envs: int = N_ENVS,
    progress: bool = False,
    desc: str = "",
    first_episode: int = 0,
    reset_options: Callable | None = None,
    max_episodes: int | None = None,
) -> list[dict]:
    """Episodes (observations T+1, actions, rewards, terminations, truncations, return) of ``behavior``
    totalling exactly ``size`` transitions (or ``max_episodes`` whole episodes, whichever comes first)."""
    with one_blas_thread():
        return _collect(
            env_factory, behavior, size, seed, n_envs, progress, desc, first_episode, reset_options, max_episodes
        )


def one_blas_thread():
    """Small batched matmuls run far faster on one BLAS thread (and do not fight the simulator)."""
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - a dependency; only slower without it
        import contextlib

        return contextlib.nullcontext()


def _collect(env_factory, behavior, size, seed, n_envs, progress, desc, first_episode, reset_options, max_episodes):
    rng = np.random.default_rng(seed)
    first = env_factory()
    horizon = getattr(first.spec, "max_episode_steps", None) or 1000
    if max_episodes is None:  # no more environments than the size needs (small builds)
        n_envs = max(1, min(n_envs, -(-size // horizon) + 1))
    n_envs = max(1, min(n_envs, size, max_episodes or n_envs))
    envs = [first] + [env_factory() for _ in range(n_envs - 1)]
    low, high = envs[0].action_space.low, envs[0].action_space.high
    bar = _bar(progress, size, desc)
    done_eps: dict[int, dict] = {}
    started = 0
    cur: list[dict | None] = [None] * n_envs
    obs: list = [None] * n_envs

    def begin(slot):
        nonlocal started
        k = first_episode + started
        started += 1
        opts = reset_options(k) if reset_options else None
        o, _ = envs[slot].reset(seed=reset_seed(seed, k), options=opts)
        obs[slot] = o
        cur[slot] = {"k": k, "obs": [_copy_obs(o)], "act": [], "rew": [], "term": [], "trunc": []}
        behavior.start(slot, o, envs[slot])

    prefix = {"k": first_episode, "steps": 0}  # finished episodes contiguous in start order

    def enough() -> bool:
        # every episode that starts before the cut must be finished: the cut keeps start order
        if max_episodes is not None and len(done_eps) >= max_episodes:
            return True
        while prefix["k"] in done_eps:
            prefix["steps"] += len(done_eps[prefix["k"]]["act"])
            prefix["k"] += 1
        if prefix["steps"] >= size:
            return True
        if max_episodes is None:  # the next episode in start order may still be running: cut it there
            running = next((c for c in cur if c is not None and c["k"] == prefix["k"]), None)
            if running is not None and prefix["steps"] + len(running["act"]) >= size:
                done_eps[running["k"]] = {**running, "open": True}
                return True
        return False

    try:
        for slot in range(n_envs):
            begin(slot)
        while not enough():
            live = [s for s in range(n_envs) if cur[s] is not None]
            if not live:
                break
            behavior.live = live  # which slot each row of obs_list is
            acts = np.clip(behavior.act([obs[s] for s in live], rng), low, high).astype(np.float32)
            for j, s in enumerate(live):
                o, r, term, trunc, _ = envs[s].step(acts[j])
                c = cur[s]
                c["obs"].append(_copy_obs(o)), c["act"].append(acts[j]), c["rew"].append(float(r))
                c["term"].append(bool(term)), c["trunc"].append(bool(trunc))
                obs[s] = o
                behavior.observe(s, o, envs[s])
                if term or trunc:
                    done_eps[c["k"]] = _compact(c)  # arrays, not millions of small objects
                    if bar is not None:
                        bar.update(min(len(c["act"]), max(0, size - bar.n)))
                    cur[s] = None
                    # stop starting episodes once the finished ones in start order cover the size
                    if not enough() and (max_episodes is None or started - first_episode < max_episodes):
                        begin(s)
    finally:
        for e in envs:
            e.close()
        if bar is not None:
            bar.update(max(0, min(size, _prefix_total(done_eps, first_episode)) - bar.n))
            bar.close()
    return _cut(done_eps, first_episode, size, max_episodes)


def _compact(c: dict) -> dict:
    if not isinstance(c["act"], list):
        return c
    return {
        **c,
        "obs": _stack_obs(c["obs"]),
        "act": np.stack(c["act"]),
        "rew": np.asarray(c["rew"], np.float64),
        "term": np.asarray(c["term"], bool),
        "trunc": np.asarray(c["trunc"], bool),
    }


def _prefix_total(done_eps: dict, first: int) -> int:
    total, k = 0, first
    while k in done_eps:
        total, k = total + len(done_eps[k]["act"]), k + 1
    return total


def _cut(done_eps: dict, first: int, size: int, max_episodes: int | None) -> list[dict]:
    out, total, k = [], 0, first
    while k in done_eps and total < size and (max_episodes is None or len(out) < max_episodes):
        c = _compact(done_eps[k])
        t = min(len(c["act"]), size - total)
        term = np.array(c["term"][:t], bool)
        trunc = np.array(c["trunc"][:t], bool)
        if t < len(c["act"]) or c.get("open"):  # cut short: the last kept step is a truncation, not a terminal
            term[-1], trunc[-1] = False, True
        obs = c["obs"]
        obs = {k2: v[: t + 1] for k2, v in obs.items()} if isinstance(obs, dict) else obs[: t + 1]
        out.append(
            {
                "observations": obs,
                "actions": c["act"][:t],
                "rewards": np.array(c["rew"][:t]),
                "terminations": term,
                "truncations": trunc,
                "return": float(np.sum(c["rew"][:t])),
                "complete": t == len(c["act"]) and not c.get("open"),
            }
        )
        total += t
        k += 1
    return out


def cut_episode(e: dict, t: int) -> dict:
    """Episode ``e`` cut to its first ``t`` steps: the last kept step is a truncation, never a terminal."""
    return {
        **e,
        "observations": e["observations"][: t + 1],
        "actions": e["actions"][:t],
        "rewards": e["rewards"][:t],
        "terminations": np.zeros(t, bool),
        "truncations": np.r_[np.zeros(t - 1, bool), True],
        "return": float(np.sum(e["rewards"][:t])),
    }


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc or "transitions", unit="tr", unit_scale=True, dynamic_ncols=True)


def episode_stats(episodes: list[dict]) -> dict:
    rets = [e["return"] for e in episodes if e.get("complete", True)] or [e["return"] for e in episodes]
    return {
        "episodes": len(episodes),
        "transitions": int(sum(len(e["actions"]) for e in episodes)),
        "return_mean": float(np.mean(rets)) if rets else None,
        "return_std": float(np.std(rets)) if rets else None,
    }


def policy_file_info(policy) -> dict:
    """Provenance of a policy file: name, sha256 prefix, its source and measured return."""
    h = hashlib.sha256(Path(policy.path).read_bytes()).hexdigest()[:16]
    return {
        "file": f"policies/{policy.path.name}",
        "sha256": h,
        "source": policy.meta.get("source"),
        "source_path": policy.meta.get("source_path"),
        "measured_return": policy.measured_return,
    }
