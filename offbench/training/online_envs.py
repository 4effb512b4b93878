"""The fine-tuning environments (offbench.training.online): ``n_seeds x n_envs`` environments stepped on the host in
lockstep, with replayable positions. Every episode's reset seed is derived from the run seed, and the actions since
the last reset are kept, so a resumed run rebuilds each environment by replaying them (:meth:`OnlineEnvs.restore`):
it continues identically wherever the simulator is deterministic."""

from __future__ import annotations

import numpy as np

from offbench.envs import reset_seed
from offbench.evaluation.episodes import episode_success


class OnlineEnvs:
    """``n_seeds x n_envs`` environments; reset seeds are a function of (run seed, env, episode number)."""

    def __init__(self, factory, seeds: list[int], n_envs: int, adapter):
        self.factory, self.seeds, self.n_envs, self.adapter = factory, list(seeds), int(n_envs), adapter
        self.envs = [[factory() for _ in range(self.n_envs)] for _ in self.seeds]
        self.episode = np.zeros((len(self.seeds), self.n_envs), np.int64)
        self.actions: list[list[list]] = [[[] for _ in range(self.n_envs)] for _ in self.seeds]
        self.ep_return = np.zeros((len(self.seeds), self.n_envs))
        self.ep_success = np.zeros((len(self.seeds), self.n_envs), bool)
        self.reports_success = False  # the environment's info has a success flag (AntMaze, Adroit, Kitchen)
        self.obs = None

    def _seed(self, i: int, j: int) -> int:
        # from the run seed's value, the env and its episode number, hashed (offbench.envs.reset_seed): no
        # two seeds' episodes share a reset seed, nor do they share one with the evaluation's
        return reset_seed("online", self.seeds[i], j, int(self.episode[i, j]))

    def reset_all(self) -> np.ndarray:
        rows = []
        for i in range(len(self.seeds)):
            rows.append([self.adapter(self.envs[i][j].reset(seed=self._seed(i, j))[0]) for j in range(self.n_envs)])
        self.obs = np.asarray(rows, np.float32)
        return self.obs

    def step(self, actions: np.ndarray):
        """Steps every environment; returns (obs, next_obs, raw rewards, terminals) of the transitions and
        resets finished episodes (``self.obs`` then holds the new episodes' first observations)."""
        n, m = len(self.seeds), self.n_envs
        next_obs = np.zeros_like(self.obs)
        rewards = np.zeros((n, m), np.float32)
        terminals = np.zeros((n, m), np.float32)
        prev = self.obs.copy()
        finished_returns = []
        for i in range(n):
            for j in range(m):
                a = actions[i, j]
                o, r, term, trunc, info = self.envs[i][j].step(a)
                self.reports_success |= "success" in info or "is_success" in info
                self.ep_success[i, j] |= episode_success(info)
                self.actions[i][j].append(np.asarray(a, np.float32).tolist())
                next_obs[i, j] = self.adapter(o)
                rewards[i, j] = r
                terminals[i, j] = float(term)
                self.ep_return[i, j] += r
                if term or trunc:
                    finished_returns.append((i, self.ep_return[i, j], bool(self.ep_success[i, j])))
                    self.ep_return[i, j] = 0.0
                    self.ep_success[i, j] = False
                    self.episode[i, j] += 1
                    self.actions[i][j] = []
                    self.obs[i, j] = self.adapter(self.envs[i][j].reset(seed=self._seed(i, j))[0])
                else:
                    self.obs[i, j] = next_obs[i, j]
        return prev, next_obs, rewards, terminals, finished_returns

    def snapshot(self) -> dict:
        return {
            "episode": self.episode.tolist(),
            "actions": self.actions,
            "ep_return": self.ep_return.tolist(),
            "ep_success": self.ep_success.tolist(),
            "reports_success": self.reports_success,
        }

    def restore(self, snap: dict) -> np.ndarray:
        self.episode = np.asarray(snap["episode"], np.int64)
        self.actions = snap["actions"]
        self.ep_return = np.asarray(snap["ep_return"], np.float64)
        self.ep_success = np.asarray(snap["ep_success"], bool)
        self.reports_success = bool(snap["reports_success"])
        rows = []
        for i in range(len(self.seeds)):
            row = []
            for j in range(self.n_envs):
                o = self.envs[i][j].reset(seed=self._seed(i, j))[0]
                for a in self.actions[i][j]:
                    o = self.envs[i][j].step(np.asarray(a, np.float32))[0]
                row.append(self.adapter(o))
            rows.append(row)
        self.obs = np.asarray(rows, np.float32)
        return self.obs

    def close(self):
        for row in self.envs:
            for env in row:
                env.close()
