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
  environment steps); records get ``offline_score``, ``online_score``, CORL's ``corl_regret`` (mean of
  1 - success over the online *exploration* episodes, CORL ``algorithms/finetune/*.py``) and
  ``eval_regret`` (mean of 1 - score/100 over the online evaluations; not CORL's quantity);
* checkpoints hold the state, the online rows of the buffers (the offline rows are the dataset, referenced by
  its fingerprint, not copied) and the environments' positions (offbench.training.online_envs). Every episode's reset seed is
  derived from the run seed, and the actions since the last reset are kept, so a resumed run rebuilds each
  environment by replaying them: it continues identically wherever the simulator is deterministic.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.evaluation.episodes import env_factory_for
from offbench.records import checkpoint
from offbench.training.from_run import check_from_config, from_checkpoint, load_offline_from  # noqa: F401
from offbench.training.offline import Prepared, Run, begin_fresh, finish, progress_bar
from offbench.training.online_envs import OnlineEnvs
from offbench.training.step import make_train_step

STANDARD_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


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
        buffer = {
            k: jax.lax.dynamic_update_slice_in_dim(buffer[k], trans[k].astype(jnp.float32), size, axis=0)
            for k in buffer
        }
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


def corl_regret(successes: list[bool]) -> float | None:
    """CORL's regret: the mean over the online *exploration* episodes of (1 - success), CORL
    ``algorithms/finetune/iql.py`` (``train_successes``; ``regret = mean(1 - successes)``)."""
    if not successes:
        return None
    return float(np.mean([1.0 - float(s) for s in successes]))


def eval_regret(online_scores: list[float]) -> float | None:
    """Not CORL's quantity: the mean over the online *evaluations* of (1 - normalised score / 100)."""
    scores = [s for s in online_scores if s is not None and math.isfinite(s)]
    if not scores:
        return None
    return float(np.mean([1.0 - s / 100.0 for s in scores]))


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
            raise OffbenchError(
                f"{prep.algorithm.name} samples dataset fields {extra} that online transitions do not "
                "have, so it cannot fine-tune online"
            )
        need = prep.size + opts.online_steps * self.n_envs
        self.capacity = int(cfg["replay_capacity"] or need)
        if self.capacity < need:
            raise OffbenchError(
                f"replay_capacity {self.capacity} is smaller than the offline data plus all online "
                f"transitions ({need}); set --set replay_capacity={need} or more"
            )
        self.env_steps = 0
        self.owed = 0.0
        self.online_updates = 0
        self.offline_steps = opts.steps
        self.raw_reward_sum = np.zeros(len(self.seeds))
        self.online_fns: dict[int, object] = {}
        self.returns_log: list[list[float]] = [[] for _ in self.seeds]
        self.success_log: list[list[bool]] = [[] for _ in self.seeds]
        self.reports_success = False

    def online_fn(self, n_updates: int):
        if n_updates not in self.online_fns:
            self.online_fns[n_updates] = make_online_step(self.p.agent, int(self.p.config["batch_size"]), n_updates)
        return self.online_fns[n_updates]

    def checkpoint_info(self) -> dict:
        info = super().checkpoint_info()
        info.update(
            phase="online" if self.env_steps or self.step > self.offline_steps else "offline",
            env_steps=self.env_steps,
            owed=self.owed,
            online_updates=self.online_updates,
            raw_reward_sum=self.raw_reward_sum.tolist(),
            offline_steps=self.offline_steps,
            returns_log=self.returns_log,
            success_log=self.success_log,
            reports_success=self.reports_success,
        )
        return info

    def record(self, i: int, status: str, **extra) -> dict:
        rec = super().record(i, status, **extra)
        off = [c["score"] for c in self.curves[i] if c["phase"] == "offline"]
        on = [c["score"] for c in self.curves[i] if c["phase"] == "online"]
        rec.update(
            finetune=True,
            offline_steps=self.offline_steps,
            online_steps=self.p.opts.online_steps,
            env_steps=self.env_steps,
            online_updates=self.online_updates,
            updates_per_env_step=self.ratio,
            online_envs=self.n_envs,
            replay_capacity=self.capacity,
            offline_score=off[-1] if off else None,
            online_score=on[-1] if on else None,
            eval_regret=eval_regret(on),
            online_episode_returns=self.returns_log[i][-100:],
            online_episodes=len(self.success_log[i]),
        )
        if self.reports_success:
            rec.update(corl_regret=corl_regret(self.success_log[i]), online_successes=int(sum(self.success_log[i])))
            if rec["corl_regret"] is None:
                rec["corl_regret_reason"] = "no online episode ended"
        else:
            rec.update(
                corl_regret=None,
                corl_regret_reason="the environment reports no success (CORL computes regret for AntMaze and Adroit)",
            )
        return rec

    def online_rows(self, sizes) -> int:
        sizes = np.asarray(sizes)
        if not (sizes == sizes[0]).all():  # every seed steps its environments in lockstep
            raise OffbenchError(f"replay buffers of different sizes {sizes.tolist()}")
        return int(sizes[0]) - self.p.size

    def transitions(self, prev, next_obs, rewards, terminals, actions) -> dict:
        """The online transitions as the buffer stores them: the offline data's reward transform applied."""
        p = self.p
        return {
            "observations": prev,
            "actions": actions,
            "next_observations": next_obs,
            "rewards": (rewards * p.reward_scale + p.reward_shift).astype(np.float32),
            "terminals": terminals,
        }

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
            for i, ret, success in finished:
                self.returns_log[i].append(float(ret))
                self.success_log[i].append(success)
            self.reports_success |= envs.reports_success
            self.raw_reward_sum += rewards.sum(1)
            trans = self.transitions(prev, next_obs, rewards, terms, actions)
            self.owed += self.ratio * self.n_envs
            n_updates = int(math.floor(self.owed + 1e-9))
            self.owed -= n_updates
            fn = self.online_fn(n_updates)
            first = fn._cache_size() == 0
            t0 = time.time()
            states, keys, buffer, sizes, actions, metrics = fn(
                states, keys, buffer, sizes, jax.tree_util.tree_map(jnp.asarray, trans), jnp.asarray(envs.obs)
            )
            actions = np.asarray(actions)
            if first:
                self.compile_s += time.time() - t0
            self.env_steps += 1
            self.step += n_updates
            self.online_updates += n_updates
            steps_since += 1
            if n_updates:
                self.note_metrics(metrics, n_updates)
            if bar is not None:
                bar.update(1)
                if time.time() - t_last > 1.0:
                    bar.set_postfix(
                        {**self._postfix(), "env steps/s": f"{steps_since / (time.time() - t_last):.0f}"}, refresh=False
                    )
                    t_last, steps_since = time.time(), 0
            if self.env_steps % every == 0 or self.env_steps == total:
                self.evaluate(states, phase="online", env_steps=self.env_steps, bar=bar)
                rows = self.online_rows(sizes)
                self.save(
                    {
                        "states": states,
                        "keys": keys,
                        "online": {k: v[:, self.p.size : self.p.size + rows] for k, v in buffer.items()},
                        "sizes": sizes,
                        "actions": jnp.asarray(actions),
                    },
                    {"envs": envs.snapshot(), "online_rows": rows},
                )
                self.write_records("running")
        return states, keys, buffer, sizes


def _resume_online(run: FinetuneRun, states, keys, buffer, sizes, envs):
    """The checkpointed phase and tree of an interrupted fine-tuning run (its online rows put back into the
    buffers built from the offline data), or the offline phase from scratch."""
    info = checkpoint.read_info(run.ckpt_dir)
    phase = info.get("phase", "offline")
    template = {"states": states, "keys": keys}
    if phase == "online":
        rows = int(info["online_rows"])
        template.update(
            online={k: jnp.zeros((v.shape[0], rows) + v.shape[2:], v.dtype) for k, v in buffer.items()},
            sizes=sizes,
            actions=jnp.zeros((len(run.seeds), run.n_envs, run.p.spec.act_dim), jnp.float32),
        )
    tree, info = run.try_resume(template)
    run.env_steps, run.owed = int(info["env_steps"]), float(info["owed"])
    run.online_updates, run.offline_steps = int(info["online_updates"]), int(info["offline_steps"])
    run.raw_reward_sum = np.asarray(info["raw_reward_sum"])
    run.returns_log, run.success_log = info["returns_log"], info["success_log"]
    run.reports_success = bool(info["reports_success"])
    pending = None
    if phase == "online":
        n = run.p.size
        buffer = {k: buffer[k].at[:, n : n + rows].set(tree["online"][k]) for k in buffer}
        sizes, pending = jax.device_put(tree["sizes"]), tree["actions"]
        envs.restore(info["envs"])
    return phase, tree["states"], tree["keys"], buffer, sizes, pending


def run_finetune(prep: Prepared, say) -> list[dict]:
    opts = prep.opts
    if not prep.algorithm.finetune:
        raise OffbenchError(
            f"{prep.algorithm.name} does not fine-tune online (an offline-only method); drop --online-steps/--from"
        )
    if opts.online_steps < 1:
        raise OffbenchError("--from needs --online-steps N (N >= 1)")
    run = FinetuneRun(prep, say)
    states, keys = run.init_states()
    buffer, sizes = make_buffer(prep.data, len(run.seeds), run.capacity)
    begin_fresh(prep, run, opts, say)
    envs = OnlineEnvs(env_factory_for(prep.source), run.seeds, run.n_envs, run.obs_adapter)  # AntMaze: ends at the goal
    phase, pending = "offline", None
    if opts.resume and checkpoint.exists(run.ckpt_dir):
        phase, states, keys, buffer, sizes, pending = _resume_online(run, states, keys, buffer, sizes, envs)
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
        with progress_bar(
            opts, run.env_steps, opts.online_steps, f"{prep.algorithm.name} {prep.source.name} online"
        ) as bar:
            run.train_online(states, keys, buffer, sizes, envs, pending, bar)
    finally:
        envs.close()
        run.evaluator.close()
        run.metrics_log.close()
    return finish(run)
