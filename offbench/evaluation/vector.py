"""Parallel host evaluation: the environments live in worker processes, the policy in this one.

Every seed has ``width`` environment slots; its episodes go through them in order, a slot starting the
seed's next episode as soon as its current one ends (no wave waits for its slowest episode). Each step is
one jitted, vmapped ``act`` call for all seeds x slots, then one message per worker with the actions of the
slots it holds, sent to all workers before any answer is read. Episode ``j`` of seed ``s`` starts from the
same reset seed as in the serial :class:`~offbench.evaluation.evaluator.Evaluator` and the act batch has the
same shape, so both give the same numbers (``tests/test_evaluation.py``).

Workers are ``spawn``-ed (never forked from a process running JAX), import no JAX
(:mod:`offbench.evaluation.workers`), start at the first evaluation and are reused for the whole run.
:meth:`ParallelEvaluator.close` stops them (also on garbage collection and at interpreter exit); they
ignore Ctrl-C and exit when the parent's end of their pipe closes.
"""

from __future__ import annotations

import multiprocessing as mp
import weakref
from collections import deque
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.evaluation.episodes import DEFAULT_WIDTH, EvalResult, eval_reset_seed


class ParallelEvaluator:
    backend = "host"

    def __init__(
        self,
        env_factory: Callable,
        obs_adapter,
        act_fn: Callable,
        seeds: list[int],
        episodes: int,
        workers: int = 2,
        width: int | None = None,
    ):
        """``env_factory`` and ``obs_adapter`` must be picklable (:class:`offbench.envs.EnvFactory`)."""
        self.env_factory, self.obs_adapter, self.act_fn = env_factory, obs_adapter, act_fn
        self.seeds = [int(s) for s in seeds]
        self.n_seeds = len(self.seeds)
        self.episodes = int(episodes)
        self.width = int(min(width or DEFAULT_WIDTH, self.episodes)) if self.episodes > 0 else 0
        self.workers = max(1, min(int(workers), self.n_seeds * max(self.width, 1)))
        self._procs: list = []
        self._conns: list = []
        self._finalizer = None

    # -- workers -----------------------------------------------------------------------------------
    def _start(self):
        if self._procs:
            return
        from offbench.evaluation import workers

        ctx = mp.get_context("spawn")
        for _ in range(self.workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=workers.serve, args=(child, self.env_factory, self.obs_adapter), daemon=True)
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns)

    def _owner(self, s: int, b: int) -> int:
        return (s * self.width + b) % self.workers

    def _ask(self, requests: dict) -> dict:
        """Send every worker its request, then read the answers: {worker: reply}."""
        for w, req in requests.items():
            self._conns[w].send(req)
        out = {}
        for w in requests:
            try:
                reply = self._conns[w].recv()
            except (EOFError, OSError):
                code = self._procs[w].exitcode
                self.close()
                raise OffbenchError(f"evaluation worker {w} exited unexpectedly (exit code {code})") from None
            if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "error":
                self.close()
                raise OffbenchError(f"evaluation environment failed in worker {w}: {reply[1]}")
            out[w] = reply
        return out

    def worker_modules(self) -> list[list[str]]:
        """The top-level modules each worker has loaded (for the test that workers start no JAX)."""
        self._start()
        return list(self._ask({w: ("modules",) for w in range(self.workers)}).values())

    # -- one evaluation ----------------------------------------------------------------------------
    def _reset(self, starts: list[tuple[int, int, int]], obs: np.ndarray | None):
        """Start episode j in slot (s, b) for each (s, b, j); returns the observation array."""
        by_worker: dict[int, list] = {}
        for s, b, j in starts:
            by_worker.setdefault(self._owner(s, b), []).append((s, b, j))
        replies = self._ask(
            {
                w: ("reset", [(s * self.width + b, eval_reset_seed(self.seeds[s], j)) for s, b, j in items])
                for w, items in by_worker.items()
            }
        )
        for w, items in by_worker.items():
            for (s, b, _), x in zip(items, replies[w]):
                if obs is None:
                    obs = np.zeros((self.n_seeds, self.width, x.shape[0]), np.float32)
                obs[s, b] = x
        return obs

    def __call__(self, states) -> EvalResult:
        n, w, E = self.n_seeds, self.width, self.episodes
        res = EvalResult.empty(n, E)
        if E == 0:
            return res
        self._start()
        pending = [deque(range(E)) for _ in range(n)]
        episode = np.full((n, w), -1, np.int64)  # the episode each slot runs, -1: idle
        starts = []
        for s in range(n):
            for b in range(w):
                episode[s, b] = pending[s].popleft()
                starts.append((s, b, int(episode[s, b])))
        obs = self._reset(starts, None)
        while (episode >= 0).any():
            actions = np.asarray(self.act_fn(states, jnp.asarray(obs)))
            by_worker: dict[int, list] = {}
            for s, b in zip(*np.nonzero(episode >= 0)):
                by_worker.setdefault(self._owner(s, b), []).append((int(s), int(b)))
            replies = self._ask(
                {
                    k: ("step", [s * w + b for s, b in items], np.stack([actions[s, b] for s, b in items]))
                    for k, items in by_worker.items()
                }
            )
            starts = []
            for k, items in by_worker.items():
                o, r, done, succ = replies[k]
                for i, (s, b) in enumerate(items):
                    j = episode[s, b]
                    res.returns[s, j] += r[i]
                    res.lengths[s, j] += 1
                    res.successes[s, j] |= bool(succ[i])
                    obs[s, b] = o[i]
                    if done[i]:
                        episode[s, b] = pending[s].popleft() if pending[s] else -1
                        if episode[s, b] >= 0:
                            starts.append((s, b, int(episode[s, b])))
            if starts:
                obs = self._reset(starts, obs)
        return res

    def close(self):
        if self._finalizer is not None:
            self._finalizer()
        self._procs, self._conns, self._finalizer = [], [], None


def _shutdown(procs, conns):
    for c in conns:
        try:
            c.send(("close",))
        except (OSError, BrokenPipeError):
            pass
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
    for c in conns:
        c.close()
