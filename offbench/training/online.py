"""Offline-to-online fine-tuning (IQL paper Sec. 5.3 / App. C, CORL's fine-tuning benchmark).

After the offline phase (run here, or loaded from an earlier run with ``--from``) the same state keeps
training while interacting with the environment:

* each seed has its own replay buffer, preallocated on the device with a fixed capacity (the offline
  dataset + every online transition), so the compiled update never changes shape; new transitions get
  the offline data's reward transform and observation normalisation;
* each seed has its own ``online_envs`` environments, stepped on the host in lockstep; one compiled,
  vmapped call per environment step inserts the new transitions, runs the owed gradient updates
  (``online_updates_per_step`` per environment step) with ``lax.scan`` and returns the next exploration
  actions (the algorithm's ``act(..., deterministic=False)``);
* evaluation every ``--eval-every`` environment steps; the curve covers both phases (gradient steps and
  environment steps); records get ``offline_score``, ``online_score`` and CORL's ``regret``;
* checkpoints hold the state, the buffers and the environments' positions. Every episode's reset seed is
  derived from the run seed, and the actions since the last reset are kept, so a resumed run rebuilds each
  environment by replaying them: it continues identically wherever the simulator is deterministic.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.training.offline import Prepared, Run, begin_fresh, finish, progress_bar
from offbench.training.step import make_train_step

STANDARD_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")
ENV_SEED_BASE = 2_000_000


# --------------------------------------------------------------------------------------------------
# Environments with replayable positions

class OnlineEnvs:
    """``n_seeds x n_envs`` environments; reset seeds are a function of (run seed, env, episode number)."""

    def __init__(self, factory, seeds: list[int], n_envs: int, adapter):
        self.factory, self.seeds, self.n_envs, self.adapter = factory, list(seeds), int(n_envs), adapter
        self.envs = [[factory() for _ in range(self.n_envs)] for _ in self.seeds]
        self.episode = np.zeros((len(self.seeds), self.n_envs), np.int64)
        self.actions: list[list[list]] = [[[] for _ in range(self.n_envs)] for _ in self.seeds]
        self.ep_return = np.zeros((len(self.seeds), self.n_envs))
        self.obs = None

    def _seed(self, i: int, j: int) -> int:
        return ENV_SEED_BASE + 100_000 * self.seeds[i] + 1000 * int(self.episode[i, j]) + j

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
                o, r, term, trunc, _ = self.envs[i][j].step(a)
                self.actions[i][j].append(np.asarray(a, np.float32).tolist())
                next_obs[i, j] = self.adapter(o)
                rewards[i, j] = r
                terminals[i, j] = float(term)
                self.ep_return[i, j] += r
                if term or trunc:
                    finished_returns.append((i, self.ep_return[i, j]))
                    self.ep_return[i, j] = 0.0
                    self.episode[i, j] += 1
                    self.actions[i][j] = []
                    self.obs[i, j] = self.adapter(self.envs[i][j].reset(seed=self._seed(i, j))[0])
                else:
                    self.obs[i, j] = next_obs[i, j]
        return prev, next_obs, rewards, terminals, finished_returns

    def snapshot(self) -> dict:
        return {"episode": self.episode.tolist(), "actions": self.actions, "ep_return": self.ep_return.tolist()}

    def restore(self, snap: dict) -> np.ndarray:
        self.episode = np.asarray(snap["episode"], np.int64)
        self.actions = snap["actions"]
        self.ep_return = np.asarray(snap["ep_return"], np.float64)
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


# --------------------------------------------------------------------------------------------------
# The compiled online step

def make_buffer(offline: dict, n_seeds: int, capacity: int):
    """Per-seed buffers ``[n_seeds, capacity, ...]`` holding the offline data in their first rows."""
    n = int(offline["rewards"].shape[0])

    def one(x):
        buf = jnp.zeros((capacity,) + x.shape[1:], jnp.float32).at[:n].set(x)
        return jnp.broadcast_to(buf, (n_seeds,) + buf.shape)

    return {k: one(offline[k]) for k in STANDARD_FIELDS}, jnp.full((n_seeds,), n, jnp.int32)


def make_online_step(agent, batch_size: int, n_updates: int):
    """jit(vmap(insert transitions -> ``n_updates`` scanned updates -> exploration actions))."""
    train_step = make_train_step(agent.update, batch_size)

    def one_seed(state, key, buffer, size, trans, obs):
        m = trans["rewards"].shape[0]
        buffer = {k: jax.lax.dynamic_update_slice_in_dim(buffer[k], trans[k].astype(jnp.float32), size, axis=0)
                  for k in buffer}
        size = size + m

        def body(carry, _):
            return train_step(carry, buffer, size)

        (state, key), metrics = jax.lax.scan(body, (state, key), None, length=n_updates)
        key, k_act = jax.random.split(key)
        actions = agent.act(state, obs, k_act, False)
        return state, key, buffer, size, actions, jax.tree_util.tree_map(jnp.mean, metrics)

    donate = () if jax.default_backend() == "cpu" else (0, 1, 2)
    return jax.jit(jax.vmap(one_seed), donate_argnums=donate)


def make_explore_act(agent):
    def one(state, key, obs):
        return agent.act(state, obs, jax.random.fold_in(key, 7), False)
    return jax.jit(jax.vmap(one))


# --------------------------------------------------------------------------------------------------
# The run

def regret(online_scores: list[float]) -> float | None:
    """CORL: mean over the online evaluations of (1 - normalised score / 100)."""
    if not online_scores:
        return None
    return float(np.mean([1.0 - s / 100.0 for s in online_scores]))


class FinetuneRun(Run):
    def __init__(self, prep: Prepared, say):
        super().__init__(prep, say)
        cfg, opts = prep.config, prep.opts
        self.n_envs = int(cfg["online_envs"])
        self.ratio = float(cfg["online_updates_per_step"])
        if self.n_envs < 1 or self.ratio < 0:
            raise OffbenchError("online_envs must be >= 1 and online_updates_per_step >= 0")
        extra = sorted(set(prep.data) - set(STANDARD_FIELDS))
        if extra:
            raise OffbenchError(f"{prep.algorithm.name} samples dataset fields {extra} that online transitions do not "
                                "have, so it cannot fine-tune online")
        need = prep.size + opts.online_steps * self.n_envs
        self.capacity = int(cfg["replay_capacity"] or need)
        if self.capacity < need:
            raise OffbenchError(f"replay_capacity {self.capacity} is smaller than the offline data plus all online "
                                f"transitions ({need}); set --set replay_capacity={need} or more")
        self.env_steps = 0
        self.owed = 0.0
        self.online_updates = 0
        self.offline_steps = opts.steps
        self.raw_reward_sum = np.zeros(len(self.seeds))
        self.online_fns: dict[int, object] = {}
        self.returns_log: list[list[float]] = [[] for _ in self.seeds]

    def online_fn(self, n_updates: int):
        if n_updates not in self.online_fns:
            self.online_fns[n_updates] = make_online_step(self.p.agent, int(self.p.config["batch_size"]), n_updates)
        return self.online_fns[n_updates]

    def checkpoint_info(self) -> dict:
        info = super().checkpoint_info()
        info.update(phase="online" if self.env_steps or self.step > self.offline_steps else "offline",
                    env_steps=self.env_steps, owed=self.owed, online_updates=self.online_updates,
                    raw_reward_sum=self.raw_reward_sum.tolist(), offline_steps=self.offline_steps,
                    returns_log=self.returns_log)
        return info

    def record(self, i: int, status: str, **extra) -> dict:
        rec = super().record(i, status, **extra)
        off = [c["score"] for c in self.curves[i] if c["phase"] == "offline"]
        on = [c["score"] for c in self.curves[i] if c["phase"] == "online"]
        rec.update(finetune=True, offline_steps=self.offline_steps, online_steps=self.p.opts.online_steps,
                   env_steps=self.env_steps, online_updates=self.online_updates,
                   updates_per_env_step=self.ratio, online_envs=self.n_envs, replay_capacity=self.capacity,
                   offline_score=off[-1] if off else None, online_score=on[-1] if on else None,
                   regret=regret(on), online_episode_returns=self.returns_log[i][-100:])
        return rec

    def transitions(self, prev, next_obs, rewards, terminals, actions) -> dict:
        """The online transitions as the buffer stores them: the offline data's reward transform applied."""
        p = self.p
        return {"observations": prev, "actions": actions, "next_observations": next_obs,
                "rewards": (rewards * p.reward_scale + p.reward_shift).astype(np.float32),
                "terminals": terminals}

    def train_online(self, states, keys, buffer, sizes, envs: OnlineEnvs, actions=None, bar=None):
        """``actions``: the pending exploration actions for ``envs.obs`` (from a checkpoint), else sampled."""
        p = self.p
        total, every = p.opts.online_steps, p.opts.eval_every
        if actions is None:
            actions = make_explore_act(p.agent)(states, keys, jnp.asarray(envs.obs))
        actions = np.asarray(actions)
        t_last, steps_since = time.time(), 0
        while self.env_steps < total:
            actions = np.clip(actions, p.spec.act_low, p.spec.act_high)
            prev, next_obs, rewards, terms, finished = envs.step(actions)
            for i, ret in finished:
                self.returns_log[i].append(float(ret))
            self.raw_reward_sum += rewards.sum(1)
            trans = self.transitions(prev, next_obs, rewards, terms, actions)
            self.owed += self.ratio * self.n_envs
            n_updates = int(math.floor(self.owed + 1e-9))
            self.owed -= n_updates
            fn = self.online_fn(n_updates)
            first = fn._cache_size() == 0
            t0 = time.time()
            states, keys, buffer, sizes, actions, metrics = fn(states, keys, buffer, sizes,
                                                              jax.tree_util.tree_map(jnp.asarray, trans),
                                                              jnp.asarray(envs.obs))
            actions = np.asarray(actions)
            if first:
                self.compile_s += time.time() - t0
            self.env_steps += 1
            self.step += n_updates
            self.online_updates += n_updates
            steps_since += 1
            if n_updates:
                self.note_metrics(metrics)
            if bar is not None:
                bar.update(1)
                if time.time() - t_last > 1.0:
                    bar.set_postfix(self._postfix(steps_since / (time.time() - t_last)), refresh=False)
                    t_last, steps_since = time.time(), 0
            if self.env_steps % every == 0 or self.env_steps == total:
                self.evaluate(states, phase="online", env_steps=self.env_steps)
                self.save({"states": states, "keys": keys, "buffer": buffer, "sizes": sizes,
                           "actions": jnp.asarray(actions)}, {"envs": envs.snapshot()})
                self.write_records("running")
        return states, keys, buffer, sizes


def load_offline_from(run: FinetuneRun, from_dir: str, states, keys):
    """States of the final checkpoint of an earlier offline run (same algorithm, seeds and data)."""
    d = Path(from_dir)
    ck = d / "checkpoint" if (d / "checkpoint").exists() else d
    if not checkpoint.exists(ck):
        raise OffbenchError(f"--from {from_dir}: no checkpoint there (expected {ck}/checkpoint.json); "
                            "point it at a run directory results/<suite>/<dataset>/<algo>")
    info = checkpoint.read_json(ck / "checkpoint.json")
    if info.get("algo") != run.p.algorithm.name:
        raise OffbenchError(f"--from {from_dir} is a {info.get('algo')} run, not {run.p.algorithm.name}")
    if info.get("seeds") != run.seeds:
        raise OffbenchError(f"--from {from_dir} has seeds {info.get('seeds')}; run with the same --seed/--seeds")
    if info.get("fingerprint") != run.p.fingerprint:
        raise OffbenchError(f"--from {from_dir} was trained on other data (fingerprint {info.get('fingerprint')})")
    if info.get("phase", "offline") != "offline" or info.get("step") != info.get("steps"):
        raise OffbenchError(f"--from {from_dir} is not a finished offline run")
    tree, info = checkpoint.load(ck, {"states": states, "keys": keys},
                                 hint="the offline run's networks or optimiser differ from this run's config")
    run.step = run.offline_steps = int(info["step"])
    run.curves = [[dict(c, phase="offline") for c in curve] for curve in info["curves"]]
    run.say(f"continuing from the offline run in {from_dir} (step {run.step})")
    return jax.device_put(tree["states"]), jax.device_put(tree["keys"])


def run_finetune(prep: Prepared, say) -> list[dict]:
    opts = prep.opts
    if not prep.algorithm.finetune:
        raise OffbenchError(f"{prep.algorithm.name} does not fine-tune online (an offline-only method); "
                            "drop --online-steps/--from")
    if opts.online_steps < 1:
        raise OffbenchError("--from needs --online-steps N (N >= 1)")
    prep.directory = prep.directory.with_name(prep.directory.name + "-online")
    run = FinetuneRun(prep, say)
    states, keys = run.init_states()
    offline_data = prep.data
    buffer, sizes = make_buffer(offline_data, len(run.seeds), run.capacity)
    begin_fresh(prep, run, opts, say)
    envs = OnlineEnvs(prep.source.env_factory(), run.seeds, run.n_envs, run.obs_adapter)
    phase, pending = "offline", None
    if opts.resume and (run.ckpt_dir / "checkpoint.json").exists():
        info = checkpoint.read_json(run.ckpt_dir / "checkpoint.json")
        phase = info.get("phase", "offline")
        template = {"states": states, "keys": keys}
        if phase == "online":
            template.update(buffer=buffer, sizes=sizes,
                            actions=jnp.zeros((len(run.seeds), run.n_envs, prep.spec.act_dim), jnp.float32))
        tree, info = run.try_resume(template)
        states, keys = tree["states"], tree["keys"]
        run.env_steps, run.owed = int(info["env_steps"]), float(info["owed"])
        run.online_updates, run.offline_steps = int(info["online_updates"]), int(info["offline_steps"])
        run.raw_reward_sum = np.asarray(info["raw_reward_sum"])
        run.returns_log = info["returns_log"]
        if phase == "online":
            buffer, sizes, pending = tree["buffer"], tree["sizes"], tree["actions"]
            envs.restore(info["envs"])
    elif opts.from_run:
        states, keys = load_offline_from(run, opts.from_run, states, keys)
        phase = "online"
    try:
        if phase == "offline":
            run.offline_steps = opts.steps
            with progress_bar(opts, run.step, opts.steps, f"{prep.algorithm.name} {prep.source.name} offline") as bar:
                states, keys = run.train_offline(states, keys, bar)
        if run.env_steps == 0:
            envs.reset_all()
        with progress_bar(opts, run.env_steps, opts.online_steps, f"{prep.algorithm.name} {prep.source.name} online") as bar:
            run.train_online(states, keys, buffer, sizes, envs, pending, bar)
    finally:
        envs.close()
        run.evaluator.close()
    return finish(run)
