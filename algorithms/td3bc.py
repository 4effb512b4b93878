"""TD3+BC (Fujimoto & Gu, NeurIPS 2021): TD3 with a behavioural-cloning term in the actor loss.

Per update (observations normalised by the pipeline: ``normalize_obs: true``):
  a'  = clip(pi_target(s') + clip(N(0, policy_noise), -noise_clip, noise_clip), -1, 1)   (target policy smoothing)
  Q_i <- regression onto r + gamma * (1 - terminal) * min_j Q_target,j(s', a')           (twin critics)
  every ``policy_freq`` steps (delayed):
    lambda = alpha / mean|Q_1(s, pi(s))|   (not differentiated)
    pi  <- argmin  -lambda * mean Q_1(s, pi(s)) + mean (pi(s) - a)^2                     (TD3+BC eq. 3)
    pi_target, Q_target <- Polyak(tau)
The delay is a step counter in the state. The pipeline scans whole periods (``steps_per_update = policy_freq``
stacked batches: policy_freq - 1 critic-only steps, then the actor step, no branch); a single step (online
fine-tuning, a chunk's odd steps) selects the actor step with ``lax.cond`` on the counter.
(metrics: ``actor_loss`` is 0 on critic-only steps; ``actor_updated`` says which steps updated the actor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.losses import regress_critics
from offbench.training.kit.networks import DeterministicActor, critic_ensemble, polyak
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/td3bc.yaml holds the suite layers): Fujimoto & Gu, NeurIPS 2021 (Sec. 5,
# App. C) and its code sfujim/TD3_BC (main.py); CORL's td3_bc.py / configs/offline/td3_bc agree on every value.
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # TD3 / TD3+BC App. C
    "critic_lr": 3e-4,  # TD3 / TD3+BC App. C
    "hidden_dims": [256, 256],  # TD3 / TD3+BC App. C
    "discount": 0.99,  # TD3+BC App. C
    "tau": 0.005,  # TD3: target update rate
    "policy_noise": 0.2,  # TD3: target policy smoothing noise
    "noise_clip": 0.5,  # TD3: smoothing noise clip
    "policy_freq": 2,  # TD3: delayed policy updates
    "alpha": 2.5,  # TD3+BC: lambda = alpha / mean|Q|
    "normalize_obs": True,  # TD3+BC: states normalised by the dataset's mean / std
    "exploration_noise": 0.1,  # TD3: Gaussian exploration noise (fine-tuning only)
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "critic_lr": "(0, inf)",
    "discount": "(0, 1)",
    "tau": "(0, 1]",
    "policy_noise": "[0, inf)",
    "noise_clip": "[0, inf)",
    "policy_freq": "[1, inf)",
    "alpha": "[0, inf)",
    "exploration_noise": "[0, inf)",
}


def td3bc_actor_loss(q_pi, pi_actions, data_actions, alpha: float):
    """-lambda * mean Q(s, pi(s)) + mean (pi(s) - a)^2 with lambda = alpha / mean|Q| held constant."""
    lam = alpha / jax.lax.stop_gradient(jnp.abs(q_pi).mean())
    return -lam * q_pi.mean() + ((pi_actions - data_actions) ** 2).mean()


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    # PyTorch's default nn.Linear initialisation, as the author's code and CORL's (sfujim/TD3_BC TD3_BC.py Actor /
    # Critic and CORL td3_bc.py set none): the reference whose numbers sit beside offbench's (issue 28).
    actor = DeterministicActor(spec.act_dim, hidden, init_scheme="torch")
    critic = critic_ensemble(hidden, 2, init_scheme="torch")
    discount, tau, alpha = config["discount"], config["tau"], config["alpha"]
    noise, noise_clip, freq = config["policy_noise"], config["noise_clip"], int(config["policy_freq"])
    low, high = spec.act_low, spec.act_high

    def init(key):
        k_a, k_c = jax.random.split(key)
        obs, act = jnp.zeros((1, spec.obs_dim)), jnp.zeros((1, spec.act_dim))
        actor_params, critic_params = actor.init(k_a, obs), critic.init(k_c, obs, act)
        return {
            "actor": TrainState.create(actor_params, optax.adam(config["actor_lr"])),
            "critic": TrainState.create(critic_params, optax.adam(config["critic_lr"])),
            "target_actor": actor_params,
            "target_critic": critic_params,
            "step": jnp.zeros((), jnp.int32),
        }

    def step(state, batch, key, actor_now):
        """One gradient step; ``actor_now``: True/False (known statically), or None (decided by the counter)."""
        obs, act, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        eps = jnp.clip(noise * jax.random.normal(key, act.shape), -noise_clip, noise_clip)
        next_act = jnp.clip(actor.apply(state["target_actor"], next_obs) + eps, low, high)
        next_q = critic.apply(state["target_critic"], next_obs, next_act).min(0)
        target = batch["rewards"] + discount * (1.0 - batch["terminals"]) * next_q

        critic_state, q_loss, q = regress_critics(critic, state["critic"], obs, act, target)

        def actor_step(_):
            def actor_loss(params):
                pi = actor.apply(params, obs)
                return td3bc_actor_loss(critic.apply(critic_state.params, obs, pi)[0], pi, act, alpha)

            a_loss, ga = jax.value_and_grad(actor_loss)(state["actor"].params)
            actor_state = state["actor"].apply_gradients(ga)
            return (
                actor_state,
                polyak(state["target_actor"], actor_state.params, tau),
                polyak(state["target_critic"], critic_state.params, tau),
                a_loss,
            )

        def skip(_):
            return state["actor"], state["target_actor"], state["target_critic"], jnp.zeros(())

        delayed = (state["step"] + 1) % freq == 0  # TD3: actor on iterations freq, 2 freq, ...
        if actor_now is None:
            actor_state, target_actor, target_critic, a_loss = jax.lax.cond(delayed, actor_step, skip, None)
        else:
            actor_state, target_actor, target_critic, a_loss = (actor_step if actor_now else skip)(None)
        new_state = {
            "actor": actor_state,
            "critic": critic_state,
            "target_actor": target_actor,
            "target_critic": target_critic,
            "step": state["step"] + 1,
        }
        return new_state, {
            "critic_loss": q_loss,
            "actor_loss": a_loss,
            "q": q.mean(),
            "actor_updated": delayed.astype(jnp.float32),
        }

    def update(state, batch, key):
        if batch["rewards"].ndim == 1:  # one gradient step
            return step(state, batch, key, None)
        # A whole policy-delay period (Agent.steps_per_update = freq stacked batches), from a step count that
        # is a multiple of freq: freq - 1 critic-only steps, then the step with the actor: the same updates in
        # the same order as freq single steps, with no cond (a select under vmap would run the actor each step).
        first = jax.tree_util.tree_map(lambda x: x[:-1], (batch, key))
        state, metrics = jax.lax.scan(lambda s, bk: step(s, bk[0], bk[1], False), state, first)
        state, last = step(state, jax.tree_util.tree_map(lambda x: x[-1], batch), key[-1], True)
        return state, jax.tree_util.tree_map(lambda m, x: jnp.concatenate([m, x[None]]), metrics, last)

    expl = config["exploration_noise"]

    def act(state, observations, key, deterministic: bool = True):
        a = actor.apply(state["actor"].params, observations)
        if not deterministic:
            a = a + expl * jax.random.normal(key, a.shape)
        return jnp.clip(a, low, high)

    return Agent(init, update, act, steps_per_update=freq)


register(
    "td3bc",
    make=make,
    default_config=DEFAULT_CONFIG,
    description="TD3+BC (Fujimoto & Gu, 2021): TD3 with a normalised BC term, alpha 2.5",
    ranges=RANGES,
)
