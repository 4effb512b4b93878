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
  environment steps); records (offbench.training.recording) get ``offline_score``, ``online_score``, CORL's
  ``corl_regret`` (mean of 1 - success over the online *exploration* episodes, CORL ``algorithms/finetune/*.py``)
  and ``eval_regret`` (mean of 1 - score/100 over the online evaluations; not CORL's quantity);
* checkpoints hold the state, the online rows of the buffers (the offline rows are the dataset, referenced by
  its fingerprint, not copied), the environments' positions (offbench.training.online_envs) and the run's
  bookkeeping (offbench.runs.bookkeeping). Every episode's reset seed is derived from the run seed, and the actions
  since the last reset are kept, so a resumed run rebuilds each environment by replaying them: it continues
  identically wherever the simulator is deterministic.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError
from offbench.evaluation.episodes import env_factory_for
from offbench.records import checkpoint
from offbench.runs.bookkeeping import Bookkeeping
from offbench.training import offline  # called through the module: a test may replace offline.evaluate
from offbench.training.from_run import load_offline_from
from offbench.training.offline import Run, progress_bar
from offbench.training.online_envs import OnlineEnvs
from offbench.training.prepare import Prepared
from offbench.training.recording import finish, write_records
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
# The run: functions over its bookkeeping (offbench.runs.bookkeeping), as the offline phase's


@dataclasses.dataclass(frozen=True)
class OnlineSettings:
    """The online phase's settings, from the config (checked before anything is built)."""

    n_envs: int  # environments per seed (``online_envs``)
    ratio: float  # gradient updates per environment step (``online_updates_per_step``)
    capacity: int  # replay rows per seed: the offline data plus every online transition (``replay_capacity``)

    @classmethod
    def of(cls, prep: Prepared) -> OnlineSettings:
        cfg, opts = prep.config, prep.opts
        n_envs, ratio = int(cfg["online_envs"]), float(cfg["online_updates_per_step"])
        if n_envs < 1 or ratio < 0:
            raise OffbenchError("online_envs must be >= 1 and online_updates_per_step >= 0")
        extra = sorted(set(prep.data) - set(STANDARD_FIELDS))
        if extra:
            raise OffbenchError(
                f"{prep.algorithm.name} samples dataset fields {extra} that online transitions do not "
                "have, so it cannot fine-tune online"
            )
        need = prep.size + opts.online_steps * n_envs
        capacity = int(cfg["replay_capacity"] or need)
        if capacity < need:
            raise OffbenchError(
                f"replay_capacity {capacity} is smaller than the offline data plus all online "
                f"transitions ({need}); set --set replay_capacity={need} or more"
            )
        return cls(n_envs, ratio, capacity)


def online_rows(run: Run, sizes) -> int:
    sizes = np.asarray(sizes)
    if not (sizes == sizes[0]).all():  # every seed steps its environments in lockstep
        raise OffbenchError(f"replay buffers of different sizes {sizes.tolist()}")
    return int(sizes[0]) - run.prep.size


def transitions(prep: Prepared, prev, next_obs, rewards, terminals, actions) -> dict:
    """The online transitions as the buffer stores them: the offline data's reward transform applied."""
    return {
        "observations": prev,
        "actions": actions,
        "next_observations": next_obs,
        "rewards": (rewards * prep.reward_scale + prep.reward_shift).astype(np.float32),
        "terminals": terminals,
    }


def train_online(run: Run, book: Bookkeeping, states, keys, buffer, sizes, envs: OnlineEnvs, actions=None, bar=None):
    """The online phase from ``book.env_steps``: ``actions`` are the pending exploration actions for ``envs.obs``
    (from a checkpoint), else sampled. Returns ``(states, keys, buffer, sizes)``; ``book`` is updated."""
    p, cfg = run.prep, run.online
    total, every = p.opts.online_steps, p.opts.eval_every
    fns: dict[int, object] = {}  # one compiled online step per number of updates owed
    if actions is None:
        actions = make_explore_act(p.agent)(states, keys, jnp.asarray(envs.obs))
    actions = np.asarray(actions)
    t_last, steps_since = time.time(), 0
    while book.env_steps < total:
        actions = np.clip(actions, p.spec.act_low, p.spec.act_high)
        prev, next_obs, rewards, terms, finished = envs.step(actions)
        for i, ret, success in finished:
            book.returns_log[i].append(float(ret))
            book.success_log[i].append(success)
        book.reports_success |= envs.reports_success
        book.raw_reward_sum += rewards.sum(1)
        trans = transitions(p, prev, next_obs, rewards, terms, actions)
        book.owed += cfg.ratio * cfg.n_envs
        n_updates = int(math.floor(book.owed + 1e-9))
        book.owed -= n_updates
        if n_updates not in fns:
            fns[n_updates] = make_online_step(p.agent, int(p.config["batch_size"]), n_updates)
        fn = fns[n_updates]
        first = fn._cache_size() == 0
        t0 = time.time()
        states, keys, buffer, sizes, actions, metrics = fn(
            states, keys, buffer, sizes, jax.tree_util.tree_map(jnp.asarray, trans), jnp.asarray(envs.obs)
        )
        actions = np.asarray(actions)
        if first:
            book.compile_s += time.time() - t0
        book.env_steps += 1
        book.step += n_updates
        book.online_updates += n_updates
        steps_since += 1
        if n_updates:
            offline.note_metrics(run, book, metrics, n_updates)
        if bar is not None:
            bar.update(1)
            if time.time() - t_last > 1.0:
                rate = f"{steps_since / (time.time() - t_last):.0f}"
                bar.set_postfix({**offline.postfix(book), "env steps/s": rate}, refresh=False)
                t_last, steps_since = time.time(), 0
        if book.env_steps % every == 0 or book.env_steps == total:
            offline.evaluate(run, book, states, phase="online", env_steps=book.env_steps, bar=bar)
            rows = online_rows(run, sizes)
            tree = {
                "states": states,
                "keys": keys,
                "online": {k: v[:, p.size : p.size + rows] for k, v in buffer.items()},
                "sizes": sizes,
                "actions": jnp.asarray(actions),
            }
            offline.save(run, book, tree, {"envs": envs.snapshot(), "online_rows": rows})
            write_records(run, book, "running")
    return states, keys, buffer, sizes


def _resume_online(run: Run, states, keys, buffer, sizes, envs):
    """The checkpointed bookkeeping and tree of an interrupted fine-tuning run (its online rows put back into the
    buffers built from the offline data): ``(book, states, keys, buffer, sizes, pending actions)``."""
    info = checkpoint.read_info(run.ckpt_dir)
    phase = info.get("phase", "offline")
    template = {"states": states, "keys": keys}
    if phase == "online":
        rows = int(info["online_rows"])
        template.update(
            online={k: jnp.zeros((v.shape[0], rows) + v.shape[2:], v.dtype) for k, v in buffer.items()},
            sizes=sizes,
            actions=jnp.zeros((len(run.seeds), run.online.n_envs, run.prep.spec.act_dim), jnp.float32),
        )
    tree, info, book = offline.resume(run, template)
    pending = None
    if phase == "online":
        n = run.prep.size
        buffer = {k: buffer[k].at[:, n : n + rows].set(tree["online"][k]) for k in buffer}
        sizes, pending = jax.device_put(tree["sizes"]), tree["actions"]
        envs.restore(info["envs"])
    return book, tree["states"], tree["keys"], buffer, sizes, pending


def run_finetune(prep: Prepared, say) -> list[dict]:
    opts = prep.opts
    if not prep.algorithm.finetune:
        raise OffbenchError(
            f"{prep.algorithm.name} does not fine-tune online (an offline-only method); drop --online-steps/--from"
        )
    if opts.online_steps < 1:
        raise OffbenchError("--from needs --online-steps N (N >= 1)")
    run = Run(prep, say, online=OnlineSettings.of(prep))
    states, keys = run.init_states()
    book = run.fresh()
    buffer, sizes = make_buffer(prep.data, len(run.seeds), run.online.capacity)
    offline.begin_fresh(run, book)
    envs = OnlineEnvs(
        env_factory_for(prep.source), run.seeds, run.online.n_envs, run.obs_adapter
    )  # AntMaze: ends at the goal
    pending = None
    if opts.resume and checkpoint.exists(run.ckpt_dir):
        book, states, keys, buffer, sizes, pending = _resume_online(run, states, keys, buffer, sizes, envs)
    elif opts.from_run:
        states, keys, book = load_offline_from(run, opts.from_run, states, keys)
    try:
        if book.phase == "offline" and not opts.from_run:
            with progress_bar(opts, book.step, opts.steps, f"{prep.algorithm.name} {prep.source.name} offline") as bar:
                states, keys = offline.train_offline(run, book, states, keys, bar)
        if book.env_steps == 0:
            envs.reset_all()
        with progress_bar(
            opts, book.env_steps, opts.online_steps, f"{prep.algorithm.name} {prep.source.name} online"
        ) as bar:
            train_online(run, book, states, keys, buffer, sizes, envs, pending, bar)
    finally:
        envs.close()
        run.close()
    return finish(run, book)
