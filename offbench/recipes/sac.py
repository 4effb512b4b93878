"""SAC trained online in JAX: the behaviour policy of D4RL's locomotion medium / medium-replay recipes.

D4RL (Fu et al. 2020, section 5 and ``scripts/generation/mujoco/``) trained rlkit's SAC online, stopped it
when the policy reached a "medium" level, then collected ``medium`` by *sampling* that policy
(``collect_data.py``: ``a = distr.sample()``) and converted its replay buffer up to that point into
``medium-replay`` (``convert_buffer.py``). This is that SAC (Haarnoja et al. 2018, "Soft Actor-Critic
Algorithms and Applications", automatic entropy tuning), per update on a batch from the replay buffer:

  a' ~ pi(.|s'),  y = r + gamma * (1 - terminal) * (min_j Q_target,j(s', a') - alpha * log pi(a'|s'))   (eq. 3, 5)
  Q_j   <- argmin (Q_j(s, a) - y)^2                                                                   (eq. 5)
  pi    <- argmin alpha * log pi(a~|s) - min_j Q_j(s, a~),  a~ ~ pi(.|s)                              (eq. 7, 12)
  alpha <- argmin -log alpha * (log pi(a~|s) + target_entropy),  target_entropy = -|A|                (eq. 18)
  Q_target <- Polyak(tau)

Hyperparameters are rlkit's ``examples/sac.py`` (the SAC D4RL used): 2x256 ReLU networks, Adam 3e-4 for all
three, gamma 0.99, tau 5e-3, batch 256, log-std clipped to [-20, 2], 1000 exploration steps with the current
policy then 1000 updates per loop (``num_expl_steps_per_train_loop`` = ``num_trains_per_train_loop`` = 1000,
``min_num_steps_before_training`` 1000), episodes of at most 1000 steps. One difference: the actor's loss
uses the critics after this update's critic step (rlkit computes all three losses before stepping).

Pipeline style: the update is a pure jitted function, the replay buffer lives on the device (a block of
``loop`` transitions is written in place per loop), the ``loop`` updates run as one ``lax.scan``; the
environment is stepped on the host with the policy's NumPy copy (:class:`~offbench.recipes.policy.MLPPolicy`
built from the actor's parameters, sampled through its state-dependent log-std head).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CONFIG = {  # rlkit examples/sac.py (variant: layer_size 256, trainer_kwargs, algorithm_kwargs)
    "hidden_dims": (256, 256),
    "lr": 3e-4,  # policy_lr = qf_lr (and the entropy temperature's)
    "discount": 0.99,
    "tau": 5e-3,  # soft_target_tau, target_update_period 1
    "batch_size": 256,
    "loop": 1000,  # exploration steps per loop = updates per loop
    "start_steps": 1000,  # min_num_steps_before_training (collected with the initial policy)
    "max_path_length": 1000,
    "log_std_clip": (-20.0, 2.0),
    "eval_every": 5000,  # env steps between evaluations of the sampled policy (offbench's choice)
    "eval_episodes": 10,
    # The stop needs a stable estimate (issue 28: one 10-episode reading of 1519 +- 730 stopped hopper at 40k steps,
    # 402k in D4RL): an evaluation at the level is confirmed with more episodes of the same policy, and the SAC
    # stops only when the mean of all ``stop_episodes`` is at the level; else it trains on (offbench's choice:
    # the standard error of a 50-episode mean is ~1/7 of the episode spread).
    "stop_episodes": 50,
}


def compute_conditions() -> dict:
    """What a jitted training (the SAC) on this host depends on beyond its seed: the JAX backend and version, the
    CPU model and the number of CPUs the process may use. Measured (issue 28): 200 SAC updates on fixed data give
    different bits with 1 and with 2 CPUs visible (``taskset``), identical bits for the same count in separate
    processes; the SAC's chaotic learning then amplifies that into other stop steps and other data."""
    import os
    import platform

    import jax

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count()
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "cpu_model": model,
        "cpus_visible": cpus,
    }


@dataclasses.dataclass
class SACResult:
    policy_arrays: dict  # offbench-mlp-policy/1 arrays of the stopped policy (with its log-std head)
    curve: list  # [{"env_steps", "updates", "eval_return_mean", "eval_return_std", "train_return"}]
    buffer: dict  # every transition collected, in order: observations, actions, rewards,
    # next_observations, terminations, truncations (the replay buffer)
    reached: bool  # the stop return was reached
    env_steps: int
    seconds: float


def make_sac(obs_dim: int, act_dim: int, config: dict):
    """``(init, update, actor)``: pure functions over a state pytree (see the module doc for the equations)."""
    import flax.struct
    import jax
    import jax.numpy as jnp
    import optax

    from offbench.training.kit.networks import TanhGaussianActor, critic_ensemble, polyak, tanh_gaussian_sample
    from offbench.training.kit.train_state import TrainState

    hidden = tuple(config["hidden_dims"])
    lo, hi = config["log_std_clip"]
    actor = TanhGaussianActor(act_dim, hidden, log_std_min=lo, log_std_max=hi)
    critic = critic_ensemble(hidden, 2)
    gamma, tau, target_entropy = config["discount"], config["tau"], -float(act_dim)

    @flax.struct.dataclass
    class State:
        actor: Any
        critic: Any
        target: Any
        alpha: Any

    def init(key):
        k_a, k_c = jax.random.split(key)
        o, a = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
        tx = lambda: optax.adam(config["lr"])  # noqa: E731
        cp = critic.init(k_c, o, a)
        return State(
            TrainState.create(actor.init(k_a, o), tx()),
            TrainState.create(cp, tx()),
            cp,
            TrainState.create(jnp.zeros(()), tx()),
        )

    def update(state, batch, key):
        k_next, k_pi = jax.random.split(key)
        obs, act, nxt = batch["observations"], batch["actions"], batch["next_observations"]
        alpha = jnp.exp(state.alpha.params)
        a2, logp2 = tanh_gaussian_sample(k_next, *actor.apply(state.actor.params, nxt))
        q_next = critic.apply(state.target, nxt, a2).min(0) - alpha * logp2
        y = jax.lax.stop_gradient(batch["rewards"] + gamma * (1.0 - batch["terminals"]) * q_next)

        def critic_loss(p):
            q = critic.apply(p, obs, act)
            return ((q - y) ** 2).mean(1).sum(), q.mean()

        (c_loss, q_mean), g = jax.value_and_grad(critic_loss, has_aux=True)(state.critic.params)
        critic_state = state.critic.apply_gradients(g)

        def actor_loss(p):
            a, logp = tanh_gaussian_sample(k_pi, *actor.apply(p, obs))
            return (alpha * logp - critic.apply(critic_state.params, obs, a).min(0)).mean(), logp

        (a_loss, logp), g = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        actor_state = state.actor.apply_gradients(g)
        alpha_loss, g = jax.value_and_grad(lambda la: -(la * jax.lax.stop_gradient(logp + target_entropy)).mean())(
            state.alpha.params
        )
        new = State(
            actor_state, critic_state, polyak(state.target, critic_state.params, tau), state.alpha.apply_gradients(g)
        )
        return new, {"critic_loss": c_loss, "actor_loss": a_loss, "alpha": alpha, "q": q_mean, "alpha_loss": alpha_loss}

    return init, update, actor


def policy_arrays(actor_params, act_low, act_high, config: dict, env_id: str, meta_extra: dict | None = None) -> dict:
    """The actor as ``offbench-mlp-policy/1`` arrays (relu layers, tanh squash, state-dependent log-std head)."""
    import json

    p = actor_params["params"]
    mlp = p["MLP_0"]
    n_hidden = len(mlp)
    out = {}
    for i in range(n_hidden):
        out[f"w{i}"] = np.asarray(mlp[f"Dense_{i}"]["kernel"], np.float64)
        out[f"b{i}"] = np.asarray(mlp[f"Dense_{i}"]["bias"], np.float64)
    out[f"w{n_hidden}"] = np.asarray(p["Dense_0"]["kernel"], np.float64)
    out[f"b{n_hidden}"] = np.asarray(p["Dense_0"]["bias"], np.float64)
    out["log_std_w"] = np.asarray(p["Dense_1"]["kernel"], np.float64)
    out["log_std_b"] = np.asarray(p["Dense_1"]["bias"], np.float64)
    obs_dim = out["w0"].shape[0]
    low, high = np.asarray(act_low, np.float64), np.asarray(act_high, np.float64)
    out.update(
        obs_shift=np.zeros(obs_dim), obs_scale=np.ones(obs_dim), act_shift=(high + low) / 2, act_scale=(high - low) / 2
    )
    meta = {
        "format": "offbench-mlp-policy/1",
        "activation": "relu",
        "squash": "tanh",
        "n_layers": n_hidden + 1,
        "env_id": env_id,
        "log_std_head": "state-dependent",
        "log_std_clip": list(config["log_std_clip"]),
        "source": "offbench SAC (offbench/recipes/sac.py)",
        **(meta_extra or {}),
    }
    out["meta"] = np.array(json.dumps(meta))
    return out


def train(
    env_factory: Callable,
    env_id: str,
    seed: int,
    stop_return: float | None,
    max_env_steps: int,
    config: dict | None = None,
    progress: bool = False,
    desc: str = "SAC",
) -> SACResult:
    """Train SAC online until the mean return of ``eval_episodes`` episodes of its *sampled* actions reaches
    ``stop_return`` (checked every ``eval_every`` steps) or ``max_env_steps`` are collected."""
    import jax

    from offbench.recipes import common, references
    from offbench.recipes.policy import MLPPolicy
    from offbench.training.step import make_train_step

    cfg = {**CONFIG, **(config or {})}
    loop, start, horizon = int(cfg["loop"]), int(cfg["start_steps"]), int(cfg["max_path_length"])
    env = env_factory()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high
    init, update, _ = make_sac(obs_dim, act_dim, cfg)
    step = make_train_step(update, int(cfg["batch_size"]))
    capacity = -(-max_env_steps // loop) * loop

    @jax.jit
    def chunk(state, key, data, size):
        (state, key), m = jax.lax.scan(lambda c, _: step(c, data, size), (state, key), None, length=loop)
        return state, key, jax.tree_util.tree_map(lambda x: x[-1], m)

    @jax.jit
    def insert(data, block, at):
        return jax.tree_util.tree_map(lambda d, b: jax.lax.dynamic_update_slice_in_dim(d, b, at, 0), data, block)

    key = jax.random.PRNGKey(seed)
    key, k_init = jax.random.split(key)
    state = init(k_init)
    f32 = np.float32
    data = {
        "observations": np.zeros((capacity, obs_dim), f32),
        "actions": np.zeros((capacity, act_dim), f32),
        "rewards": np.zeros(capacity, f32),
        "next_observations": np.zeros((capacity, obs_dim), f32),
        "terminals": np.zeros(capacity, f32),
    }
    data = jax.device_put(data)
    host = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")}
    rng = np.random.default_rng(seed)
    arrays = lambda st: policy_arrays(jax.device_get(st.actor.params), low, high, cfg, env_id)  # noqa: E731
    pol = MLPPolicy(f"sac-{env_id}", arrays(state))
    episode, t, ret, train_returns = 0, 0, 0.0, []
    o, _ = env.reset(seed=common.reset_seed(seed, episode))
    curve, updates, reached, t0 = [], 0, False, time.time()
    bar = common._bar(progress, max_env_steps, desc)
    try:
        with common.one_blas_thread():
            while len(host["rewards"]) < capacity:
                for _ in range(loop):  # exploration with the current policy's sampled actions (host)
                    a = np.clip(pol.sample(np.asarray(o, np.float64)[None], rng)[0], low, high).astype(f32)
                    o2, r, term, trunc, _ = env.step(a)
                    t += 1
                    ret += r
                    trunc = bool(trunc) or t >= horizon
                    for k, v in zip(host, (o, a, r, o2, bool(term), trunc and not term)):
                        host[k].append(v)
                    o = o2
                    if term or trunc:
                        train_returns.append(ret)
                        episode, t, ret = episode + 1, 0, 0.0
                        o, _ = env.reset(seed=common.reset_seed(seed, episode))
                n = len(host["rewards"])
                block = {
                    "observations": np.asarray(host["observations"][-loop:], f32),
                    "actions": np.asarray(host["actions"][-loop:], f32),
                    "rewards": np.asarray(host["rewards"][-loop:], f32),
                    "next_observations": np.asarray(host["next_observations"][-loop:], f32),
                    "terminals": np.asarray(host["terminations"][-loop:], f32),
                }
                data = insert(data, block, n - loop)
                metrics = {}
                if n > start:
                    state, key, metrics = chunk(state, key, data, n)
                    updates += loop
                    pol = MLPPolicy(f"sac-{env_id}", arrays(state))
                if bar is not None:
                    bar.update(loop)
                if n % int(cfg["eval_every"]) == 0 or n >= capacity:
                    rets = references.returns_of(
                        env_factory,
                        common.PolicyBehavior(pol, True),
                        int(cfg["eval_episodes"]),
                        seed=10_000 + seed * 1000 + len(curve),
                    )
                    point = {
                        "env_steps": n,
                        "updates": updates,
                        "eval_return_mean": float(np.mean(rets)),
                        "eval_return_std": float(np.std(rets)),
                        "eval_episodes": len(rets),
                        "train_return": float(np.mean(train_returns[-10:])) if train_returns else None,
                        "seconds": round(time.time() - t0, 1),
                        **{k: float(v) for k, v in metrics.items()},
                    }
                    curve.append(point)
                    if bar is not None:
                        bar.set_postfix(eval=f"{point['eval_return_mean']:.0f}", target=stop_return)
                    if stop_return is not None and point["eval_return_mean"] >= stop_return:
                        extra = int(cfg.get("stop_episodes", 0)) - len(rets)
                        more = (
                            references.returns_of(
                                env_factory,
                                common.PolicyBehavior(pol, True),
                                extra,
                                seed=20_000 + seed * 1000 + len(curve),
                            )
                            if extra > 0
                            else []
                        )
                        point["confirm_episodes"] = len(rets) + len(more)
                        point["confirm_return_mean"] = float(np.mean(list(rets) + list(more)))
                        if point["confirm_return_mean"] >= stop_return:
                            reached = True
                            break
    finally:
        env.close()
        if bar is not None:
            bar.close()
    buffer = {
        k: np.asarray(v, np.float32 if k not in ("terminations", "truncations") else bool) for k, v in host.items()
    }
    return SACResult(arrays(state), curve, buffer, reached, len(host["rewards"]), time.time() - t0)


def buffer_episodes(buffer: dict) -> list[dict]:
    """The replay buffer as episodes in collection order (the last one truncated where training stopped)."""
    ends = buffer["terminations"] | buffer["truncations"]
    n = len(ends)
    ends = ends.copy()
    ends[-1] = True
    out, s = [], 0
    for e in np.flatnonzero(ends):
        sl = slice(s, e + 1)
        term = buffer["terminations"][sl].copy()
        trunc = buffer["truncations"][sl].copy()
        if e == n - 1 and not term[-1]:
            trunc[-1] = True  # training stopped mid-episode: a truncation, not a terminal
        obs = np.concatenate([buffer["observations"][sl], buffer["next_observations"][e : e + 1]])
        out.append(
            {
                "observations": obs,
                "actions": buffer["actions"][sl],
                "rewards": buffer["rewards"][sl],
                "terminations": term,
                "truncations": trunc,
                "return": float(buffer["rewards"][sl].sum()),
                "complete": bool(buffer["terminations"][e] or buffer["truncations"][e]),
            }
        )
        s = e + 1
    return out
