"""Evaluation of N seeds' policies on Gymnasium environments with the deterministic action.

:class:`Evaluator` is the serial reference: one process, all seeds in lockstep, one jitted, vmapped ``act``
call per environment step for ``n_seeds x width`` environments; episodes run in waves of ``width`` per
seed. :class:`offbench.evaluation.vector.ParallelEvaluator` steps the same episodes in worker processes and
gives the same numbers; :mod:`offbench.evaluation.mjx` runs them on the device. :func:`make_evaluator`
chooses (``--eval-backend``, ``--eval-workers``). Episode ``j`` of run seed ``s`` always starts from
``eval_reset_seed(s, j)`` (:mod:`offbench.evaluation.episodes`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.evaluation.episodes import (
    DEFAULT_WIDTH,
    EvalResult,
    episode_success,
    eval_reset_seed,
)


class Evaluator:
    backend = "host"
    workers = 0

    def __init__(
        self,
        env_factory: Callable,
        obs_adapter,
        act_fn: Callable,
        seeds: list[int],
        episodes: int,
        width: int | None = None,
    ):
        """``act_fn(states, obs[n_seeds, width, obs_dim]) -> actions`` (jitted, vmapped over seeds)."""
        self.episodes = int(episodes)
        self.seeds = [int(s) for s in seeds]
        self.n_seeds = len(self.seeds)
        self.width = int(min(width or DEFAULT_WIDTH, self.episodes)) if self.episodes > 0 else 0
        self.env_factory = env_factory
        self.obs_adapter = obs_adapter
        self.act_fn = act_fn
        self.envs = None
        self.progress = None  # optional progress(episodes done, episodes in all) while an evaluation runs

    def _ensure_envs(self):
        if self.envs is None:
            self.envs = [[self.env_factory() for _ in range(self.width)] for _ in range(self.n_seeds)]

    def __call__(self, states) -> EvalResult:
        n, w, E = self.n_seeds, self.width, self.episodes
        res = EvalResult.empty(n, E)
        if E == 0:
            return res
        self._ensure_envs()
        done = 0
        for start in range(0, E, w):
            ids = list(range(start, min(start + w, E)))
            active = np.zeros((n, w), bool)
            obs = None
            for s in range(n):
                for k, j in enumerate(ids):
                    o, _ = self.envs[s][k].reset(seed=eval_reset_seed(self.seeds[s], j))
                    x = self.obs_adapter(o)
                    if obs is None:
                        obs = np.zeros((n, w, x.shape[0]), np.float32)
                    obs[s, k] = x
                    active[s, k] = True
            while active.any():
                actions = np.asarray(self.act_fn(states, jnp.asarray(obs)))
                for s in range(n):
                    for k, j in enumerate(ids):
                        if not active[s, k]:
                            continue
                        o, r, term, trunc, info = self.envs[s][k].step(actions[s, k])
                        res.returns[s, j] += float(r)
                        res.lengths[s, j] += 1
                        if episode_success(info):
                            res.successes[s, j] = True
                        obs[s, k] = self.obs_adapter(o)
                        if term or trunc:
                            active[s, k] = False
                            done += 1
                            if self.progress is not None:
                                self.progress(done, n * E)
        return res

    def close(self):
        for row in self.envs or []:
            for env in row:
                env.close()
        self.envs = None


def make_act_fn(agent_act):
    """Jitted deterministic act for all seeds at once: states (vmapped) x obs[n_seeds, B, obs_dim]."""
    key = jax.random.PRNGKey(0)

    def one(state, obs):
        return agent_act(state, obs, key, True)

    return jax.jit(jax.vmap(one))


def default_workers(cores: int | None = None) -> int:
    """Evaluation worker processes by default: one per core this process may use besides its own (it runs
    the policy and steps a share of the environments, :mod:`offbench.evaluation.vector`); 0, the serial
    path, on at most 2 cores, where the parallel path was never reliably faster than the serial one
    (``docs/speed.md``, Evaluation)."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    return int(cores) - 1 if cores > 2 else 0


BACKENDS = ("auto", "host", "mjx")


def choose_backend(backend: str, env_id: str | None) -> str:
    """``auto``: MJX on a GPU for the tasks whose fidelity was measured (``mjx_tasks.AUTO``), the host otherwise; ``mjx`` on an unsupported task
    is an error naming the supported ones."""
    from offbench.evaluation import mjx_tasks

    if backend not in BACKENDS:
        raise OffbenchError(f"unknown evaluation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    supported = mjx_tasks.supported(env_id)
    if backend == "mjx" and not supported:
        raise OffbenchError(
            f"the mjx evaluation backend does not support {env_id!r} (supported: "
            f"{', '.join(mjx_tasks.SUPPORTED)}); use --eval-backend host"
        )
    if backend == "auto":
        return "mjx" if env_id in mjx_tasks.AUTO and jax.default_backend() == "gpu" else "host"
    return backend


def check_options(backend: str, workers: int | None, env_id: str | None) -> str:
    """The backend a run will use; a bad ``--eval-backend``/``--eval-workers`` is an error (before any write)."""
    if workers is not None and int(workers) < 0:
        raise OffbenchError("--eval-workers must be >= 0 (0: serial, in this process)")
    return choose_backend(backend, env_id)


def make_evaluator(
    source,
    obs_adapter,
    act_fn: Callable,
    agent_act,
    seeds: list[int],
    episodes: int,
    backend: str = "auto",
    workers: int | None = None,
    width: int | None = None,
):
    """The evaluator a run uses: MJX on the device, or the host with ``workers`` processes (0: serial)."""
    from offbench.evaluation.episodes import env_factory_for

    chosen = check_options(backend, workers, source.env_id)
    factory = env_factory_for(source)
    if chosen == "mjx":
        from offbench.evaluation import mjx_tasks
        from offbench.evaluation.mjx import MjxEvaluator

        mjx_tasks.check_env_kwargs(source.env_id, source.env_kwargs)
        return MjxEvaluator(
            source.env_id, obs_adapter, agent_act, seeds, episodes, source.max_episode_steps, env_factory=factory
        )
    workers = default_workers() if workers is None else int(workers)
    if workers == 0:
        return Evaluator(factory, obs_adapter, act_fn, seeds, episodes, width)
    from offbench.evaluation.vector import ParallelEvaluator

    return ParallelEvaluator(factory, obs_adapter, act_fn, seeds, episodes, workers=workers, width=width)
