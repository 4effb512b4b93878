"""Runner for behaviour policies stored as ``offbench-mlp-policy/1`` (see ``../shared/data/README.md``).

Forward pass (NumPy, batched over any leading axis): ``h = (obs - obs_shift) / obs_scale``; per layer
``h = h @ w_i + b_i`` followed by the activation except after the last layer; then the squash
(``tanh``/``none``), then ``action = out * act_scale + act_shift``. The deterministic action is this mean.
``sample`` follows ``../shared/data/README.md``: with a state-dependent log-std head (SB3 SAC/TQC) the noise is
drawn *before* the squash, ``tanh(mu + exp(clip(h @ log_std_w + log_std_b, -20, 2)) * N(0, 1))`` with ``h``
the last hidden activation (SB3's tanh-squashed Gaussian, as D4RL sampled its SAC policies in
``scripts/generation/mujoco/collect_data.py``: ``a = distr.sample()``); with a state-independent ``log_std``
(DAPG, TRPO) it adds ``exp(log_std) * N(0, 1)`` to the mean (D4RL's adroit-expert recipe). Actions are clipped
to the action space before ``env.step``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError

FORMAT = "offbench-mlp-policy/1"
_ACT = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh, "none": lambda x: x, "identity": lambda x: x}


class MLPPolicy:
    def __init__(self, path: str | Path, arrays: dict | None = None):
        """Load ``path``; or, with ``arrays`` (the file's keys as NumPy arrays), a policy held in memory
        (``path`` then only names it, e.g. the SAC trained by a recipe)."""
        self.path = Path(path)
        if arrays is None:
            if not self.path.exists():
                raise OffbenchError(
                    f"policy file {self.path} does not exist; check --behavior-dir "
                    "(it must hold policies/*.npz, see ../shared/data/README.md)"
                )
            with np.load(self.path, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in z.files}
        try:
            self.meta = json.loads(str(arrays["meta"]))
        except (KeyError, ValueError) as exc:
            raise OffbenchError(f"{self.path} has no readable `meta` (not an {FORMAT} file)") from exc
        if self.meta.get("format") != FORMAT:
            raise OffbenchError(f"{self.path} has format {self.meta.get('format')!r}; expected {FORMAT}")
        n = int(self.meta["n_layers"])
        self.weights = [(arrays[f"w{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64)) for i in range(n)]
        self.obs_shift = arrays["obs_shift"].astype(np.float64)
        self.obs_scale = arrays["obs_scale"].astype(np.float64)
        self.act_shift = arrays["act_shift"].astype(np.float64)
        self.act_scale = arrays["act_scale"].astype(np.float64)
        self.log_std = arrays["log_std"].astype(np.float64) if "log_std" in arrays else None
        self.log_std_head = (
            (arrays["log_std_w"].astype(np.float64), arrays["log_std_b"].astype(np.float64))
            if "log_std_w" in arrays
            else None
        )
        self.log_std_clip = tuple(self.meta.get("log_std_clip") or (-20.0, 2.0))
        act = self.meta.get("activation", "tanh")
        squash = self.meta.get("squash", "none")
        if act not in _ACT or squash not in _ACT:
            raise OffbenchError(f"{self.path}: unknown activation {act!r} or squash {squash!r}")
        self._act, self._squash = _ACT[act], _ACT[squash]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def env_id(self) -> str:
        return self.meta["env_id"]

    @property
    def env_kwargs(self) -> dict:
        return dict(self.meta.get("env_kwargs") or {})

    @property
    def obs_dim(self) -> int:
        return int(self.weights[0][0].shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.weights[-1][0].shape[1])

    @property
    def measured_return(self) -> float | None:
        r = self.meta.get("measured_return")
        return None if r is None else float(r)

    @property
    def can_sample(self) -> bool:
        return self.log_std is not None or self.log_std_head is not None

    def _forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(last hidden activation h, pre-squash output mu)."""
        h = (np.asarray(obs, np.float64) - self.obs_shift) / self.obs_scale
        last = len(self.weights) - 1
        for w, b in self.weights[:last]:
            h = self._act(h @ w + b)
        w, b = self.weights[last]
        return h, h @ w + b

    def mean(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of observations (``(..., obs_dim) -> (..., act_dim)``)."""
        _, mu = self._forward(obs)
        return self._squash(mu) * self.act_scale + self.act_shift

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sampled actions (the rule in the module doc)."""
        if self.log_std_head is not None:
            h, mu = self._forward(obs)
            w, b = self.log_std_head
            log_std = np.clip(h @ w + b, *self.log_std_clip)
            u = mu + np.exp(log_std) * rng.standard_normal(mu.shape)
            return self._squash(u) * self.act_scale + self.act_shift
        if self.log_std is None:
            raise OffbenchError(f"policy {self.name} has no log_std; it can only act deterministically")
        mu = self.mean(obs)
        return mu + np.exp(self.log_std) * rng.standard_normal(mu.shape)

    def __call__(self, obs, rng: np.random.Generator | None = None, stochastic: bool = False) -> np.ndarray:
        return self.sample(obs, rng) if stochastic else self.mean(obs)


def load_policy(behavior_dir: str | Path, name: str) -> MLPPolicy:
    return MLPPolicy(Path(behavior_dir) / "policies" / (name if name.endswith(".npz") else f"{name}.npz"))


def evaluate_policy(
    policy: MLPPolicy,
    episodes: int,
    seed: int = 0,
    env_id: str | None = None,
    env_kwargs: dict | None = None,
    max_episode_steps: int | None = None,
    stochastic: bool = False,
) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes, episode ``i`` reset with seed ``seed + i`` (as the
    README's ``measured_return``: seeds 0..n-1); all episodes run together, one batched forward per step."""
    from offbench.recipes.common import one_blas_thread

    env_id = env_id or policy.env_id
    kwargs = policy.env_kwargs if env_kwargs is None else env_kwargs
    with one_blas_thread():
        return _run_episodes(policy, episodes, seed, env_id, kwargs, max_episode_steps, stochastic)


def _run_episodes(policy, episodes, seed, env_id, kwargs, max_episode_steps, stochastic):
    from offbench.envs import make_env

    envs = [make_env(env_id, kwargs, max_episode_steps) for _ in range(episodes)]
    rng = np.random.default_rng(seed)
    try:
        obs = np.stack([np.asarray(e.reset(seed=seed + i)[0], np.float64) for i, e in enumerate(envs)])
        low, high = envs[0].action_space.low, envs[0].action_space.high
        ret = np.zeros(episodes)
        done = np.zeros(episodes, bool)
        while not done.all():
            act = np.clip(policy(obs, rng, stochastic), low, high)
            for i, e in enumerate(envs):
                if done[i]:
                    continue
                o, r, term, trunc, _ = e.step(act[i].astype(np.float32))
                ret[i] += r
                obs[i] = o
                done[i] = term or trunc
        return ret
    finally:
        for e in envs:
            e.close()
