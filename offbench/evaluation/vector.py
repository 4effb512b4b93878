"""Parallel host evaluation: the environments are stepped by worker processes and by this one.

Every seed has ``width`` environment slots; its episodes go through them in order, each slot holding its
current episode and the one it starts next, which it starts in the same step as the current one ends (no
wave waits for its slowest episode, and no step needs a second round trip for resets). Slot ``i`` (of
``n_seeds x width``) is stepped by worker ``i % (workers + 1)``, where index ``workers`` is this process,
so one evaluation step is: one jitted, vmapped ``act`` call for all slots, one message to each worker with
its slots' actions (and next reset seeds), this process stepping its own share meanwhile, then one reply
from each worker. Episode ``j`` of seed ``s`` starts from the same reset seed as in the serial
:class:`~offbench.evaluation.evaluator.Evaluator` and the act batch has the same shape, so both give the
same numbers (``tests/test_evaluation.py``).

Why this process steps a share: otherwise it sleeps while the workers step, and every step waits for
the workers and then this process to be scheduled again; on busy cores that cost more than the stepping
saved (``docs/speed.md``, Evaluation). With a share of its own, ``workers = cores - 1`` uses every core
(:func:`~offbench.evaluation.evaluator.default_workers`).

Workers are ``spawn``-ed (never forked from a process running JAX), import no JAX
(:mod:`offbench.evaluation.workers`), start at the first evaluation and are reused for the whole run.
:meth:`ParallelEvaluator.close` stops them (also on garbage collection and at interpreter exit); they
ignore Ctrl-C and exit when the parent's end of their pipe closes.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import weakref
from collections import deque
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.evaluation.episodes import DEFAULT_WIDTH, EvalResult, eval_reset_seed
from offbench.evaluation.workers import Slots, handle, serve


class ParallelEvaluator:
    backend = "host"

    def __init__(
        self,
        env_factory: Callable,
        obs_adapter,
        act_fn: Callable,
        seeds: list[int],
        episodes: int,
        workers: int = 1,
        width: int | None = None,
    ):
        """``env_factory`` and ``obs_adapter`` must be picklable (:class:`offbench.envs.EnvFactory`).
        ``workers``: processes besides this one, at most one per slot (this process then steps none)."""
        self.env_factory, self.obs_adapter, self.act_fn = env_factory, obs_adapter, act_fn
        self.seeds = [int(s) for s in seeds]
        self.n_seeds = len(self.seeds)
        self.episodes = int(episodes)
        self.width = int(min(width or DEFAULT_WIDTH, self.episodes)) if self.episodes > 0 else 0
        n_slots = self.n_seeds * max(self.width, 1)
        self.workers = max(1, min(int(workers), n_slots))
        self.owner = np.arange(n_slots) % (self.workers + 1)  # == self.workers: stepped in this process
        self.local = Slots(env_factory, obs_adapter)
        self.progress = None  # optional progress(episodes done, episodes in all) while an evaluation runs
        self.timings: dict = {}  # of the last evaluation: act_s, send_s, local_s, wait_s, round_trips
        self._procs: list = []
        self._conns: list = []
        self._finalizer = None

    # -- workers -----------------------------------------------------------------------------------
    def _start(self):
        if self._procs:
            return
        ctx = mp.get_context("spawn")
        for _ in range(self.workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=serve, args=(child, self.env_factory, self.obs_adapter), daemon=True)
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns, self.local)

    def _fail(self, message: str):
        self.close()
        raise OffbenchError(message) from None

    def _round(self, requests: dict) -> dict:
        """Send every worker its request, handle this process's own (key ``self.workers``) meanwhile, then
        read the answers: {stepper: reply}."""
        me = self.workers
        t0 = time.perf_counter()
        for k, req in requests.items():
            if k != me:
                self._conns[k].send(req)
        t1 = time.perf_counter()
        out = {}
        if me in requests:
            try:
                out[me] = handle(requests[me], self.local)
            except Exception as exc:  # noqa: BLE001 - one error, and the workers stopped
                self._fail(f"evaluation environment failed in the main process: {type(exc).__name__}: {exc}")
        t2 = time.perf_counter()
        for k in requests:
            if k == me:
                continue
            try:
                reply = self._conns[k].recv()
            except (EOFError, OSError):
                self._fail(f"evaluation worker {k} exited unexpectedly (exit code {self._procs[k].exitcode})")
            if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "error":
                self._fail(f"evaluation environment failed in worker {k}: {reply[1]}")
            out[k] = reply
        t = self.timings
        for key, dt in (("send_s", t1 - t0), ("local_s", t2 - t1), ("wait_s", time.perf_counter() - t2)):
            t[key] = t.get(key, 0.0) + dt
        t["round_trips"] = t.get("round_trips", 0) + 1
        return out

    def worker_modules(self) -> list[list[str]]:
        """The top-level modules each worker has loaded (for the test that workers start no JAX)."""
        self._start()
        return list(self._round({w: ("modules",) for w in range(self.workers)}).values())

    def _by_owner(self, slots: np.ndarray) -> dict:
        """{stepper: its slots among ``slots``} (stepper ``self.workers``: this process), non-empty only."""
        own = self.owner[slots]
        parts = {k: slots[own == k] for k in range(self.workers + 1)}
        return {k: p for k, p in parts.items() if p.size}

    # -- one evaluation ----------------------------------------------------------------------------
    def __call__(self, states) -> EvalResult:
        n, w, E = self.n_seeds, self.width, self.episodes
        res = EvalResult.empty(n, E)
        if E == 0:
            return res
        self._start()
        self.timings = {}
        pending = [deque(range(E)) for _ in range(n)]
        # per slot (flat index s * w + b): the episode it runs and the one it starts next (-1: none)
        current = np.array([pending[s].popleft() for s in range(n) for _ in range(w)], np.int64)
        after = np.array([pending[s].popleft() if pending[s] else -1 for s in range(n) for _ in range(w)], np.int64)
        seed_of = np.repeat(self.seeds, w)

        def reset_seed(i, j):
            return eval_reset_seed(seed_of[i], j) if j >= 0 else -1

        next_seed = np.array([reset_seed(i, j) for i, j in enumerate(after)], np.int64)
        first = np.array([reset_seed(i, j) for i, j in enumerate(current)], np.int64)
        parts = self._by_owner(np.arange(n * w))
        replies = self._round({k: ("reset", idx, first[idx]) for k, idx in parts.items()})
        obs = np.zeros((n * w, next(iter(replies.values())).shape[1]), np.float32)
        for k, idx in parts.items():
            obs[idx] = replies[k]

        finished, progress = 0, self.progress
        while (current >= 0).any():
            t0 = time.perf_counter()
            actions = np.asarray(self.act_fn(states, jnp.asarray(obs.reshape(n, w, -1)))).reshape(n * w, -1)
            self.timings["act_s"] = self.timings.get("act_s", 0.0) + time.perf_counter() - t0
            parts = self._by_owner(np.flatnonzero(current >= 0))
            before = finished
            replies = self._round({k: ("step", idx, actions[idx], next_seed[idx]) for k, idx in parts.items()})
            for k, idx in parts.items():
                o, r, done, succ = replies[k]
                s, j = idx // w, current[idx]  # distinct (s, j) pairs: one slot per running episode
                res.returns[s, j] += r
                res.lengths[s, j] += 1
                res.successes[s, j] |= succ
                obs[idx] = o  # a slot that started its next episode holds that episode's first observation
                finished += int(np.count_nonzero(done))
                for i in idx[done]:
                    current[i] = after[i]
                    if after[i] >= 0:
                        q = pending[i // w]
                        after[i] = q.popleft() if q else -1
                        next_seed[i] = reset_seed(i, after[i])
            if progress is not None and finished > before:
                progress(finished, n * E)
        return res

    def close(self):
        if self._finalizer is not None:
            self._finalizer()
        self.local.close()
        self._procs, self._conns, self._finalizer = [], [], None


def _shutdown(procs, conns, local):
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
    local.close()
