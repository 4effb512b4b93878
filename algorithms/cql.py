"""CQL -- Conservative Q-Learning (Kumar, Zhou, Tucker & Levine, NeurIPS 2020), CQL(H) on SAC.

Per update (tanh-Gaussian policy pi, twin Q, automatic entropy tuning of alpha):
  alpha  <- argmin -log alpha * (log pi(a~|s) + target_entropy)                (SAC, target entropy -|A|)
  pi     <- argmin alpha * log pi(a~|s) - min_i Q_i(s, a~),  a~ ~ pi(.|s)      (SAC; BC for the first bc_steps)
  Q_i    <- argmin (Q_i(s, a) - y)^2 + cql_alpha * (logsumexp_term_i - Q_i(s, a))
            y = r + gamma * (1 - terminal) * min_j Q_target,j(s', a'),  a' ~ pi(.|s')  (no entropy backup by default;
                ``max_target_backup``: the max over N sampled a' of min_j Q_target,j, CORL cql.py _q_loss)
            logsumexp_term_i = temp * log sum exp(cat / temp) over 3N actions with importance weights:
              N uniform a ~ U[-1,1]^|A|:         Q_i(s, a) - log(0.5^|A|)
              N policy actions at s':  a ~ pi(.|s'): Q_i(s, a) - log pi(a|s')
              N policy actions at s:   a ~ pi(.|s):  Q_i(s, a) - log pi(a|s)        (CQL appendix F, eq. 30)
            (logsumexp_term_i - Q_i(s, a)) is clipped per sample to [cql_clip_diff_min, cql_clip_diff_max]
            before the batch mean (CORL cql.py; None: no bound)
  Lagrange variant (``lagrange: true``, AntMaze): the penalty is alpha' * cql_alpha * (term - gap) and
  alpha' >= 0 maximises it (gap = ``target_action_gap``; log alpha' starts at ``log_alpha_prime_init``).
  Q_target <- Polyak(tau)
All N sampled actions are drawn in one batched call and Q is evaluated on (N, B) at once (no loops).
Networks as CORL builds them (cql.py at tinkoff-ai/CORL 6afec90): the policy is TanhGaussianPolicy
(:class:`ScaledTanhGaussianActor`: log_std = clip(m * raw + o, -20, 2), m and o learnable scalars trained with
the actor, starting at 1 and -1, cql.py:349-350,360,374 and ReparameterizedTanhGaussian :276,299; PyTorch-default
hidden layers, xavier-uniform gain-1e-2 output layer, :347 init_module_weights without orthogonal_init, :256-271);
the critics are FullyConnectedQFunction with orthogonal_init (every config sets it): orthogonal gain sqrt 2
hidden layers, orthogonal gain 1e-2 output layer, zero biases (:410, :256-271).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import logsumexp

from offbench.registry import Agent, Spec, register
from offbench.training.kit.networks import (
    ScaledTanhGaussianActor,
    critic_ensemble,
    polyak,
    tanh_gaussian_log_prob,
    tanh_gaussian_sample,
)
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/cql.yaml holds the suite / dataset layers): CORL's CQL (tinkoff-ai/CORL
# algorithms/offline/cql.py TrainConfig and configs/offline/cql/{hopper,halfcheetah,walker2d}/*.yaml), the
# implementation behind the CORL numbers the report shows. Differences from it: docs/algorithms.md.
DEFAULT_CONFIG = {
    "actor_lr": 3e-5,  # CORL: policy_lr 3e-5
    "critic_lr": 3e-4,  # CORL: qf_lr 3e-4
    "alpha_lr": 3e-5,  # CORL: the entropy temperature's optimiser uses policy_lr
    "hidden_dims": [256, 256, 256],  # CORL TanhGaussianPolicy: 3 x 256
    "critic_hidden_dims": None,  # None: hidden_dims; CORL q_n_hidden_layers (3 x 256; AntMaze 5: suite layer)
    "discount": 0.99,  # CORL: discount
    "tau": 0.005,  # CORL: soft_target_update_rate, target_update_period 1
    "cql_alpha": 10.0,  # CORL locomotion configs: cql_alpha 10 (the CQL paper's 5.0 is not used there)
    "cql_n_actions": 10,  # CORL / CQL App. F: 10 sampled actions per source
    "cql_temp": 1.0,  # CORL: cql_temp
    "cql_clip_diff_min": None,  # CORL: cql_clip_diff_min -inf (None: no bound; AntMaze -200: suite layer)
    "cql_clip_diff_max": None,  # CORL: cql_clip_diff_max inf
    "max_target_backup": False,  # CORL: cql_max_target_backup (True on AntMaze: suite layer)
    "lagrange": False,  # CORL: cql_lagrange (True on AntMaze and maze2d: suite layers)
    "target_action_gap": -1.0,  # CORL: cql_target_action_gap (used only with lagrange)
    "alpha_prime_lr": 3e-4,  # CORL: alpha_prime_optimizer with qf_lr
    "log_alpha_prime_init": 1.0,  # CORL: log_alpha_prime = Scalar(1.0)
    "backup_entropy": False,  # CORL: backup_entropy False
    "target_entropy": None,  # None: -|A| (CORL / SAC)
    "bc_steps": 0,  # CORL: bc_steps 0
    "normalize_obs": True,  # CORL: normalize true (false on AntMaze: suite layer)
    "exploration_noise": None,  # act(deterministic=False) samples the tanh-Gaussian
    "log_std_multiplier": 1.0,  # CORL: policy_log_std_multiplier 1.0 (the initial m; m is learned)
    "log_std_offset": -1.0,  # CORL TanhGaussianPolicy: log_std_offset -1.0 (the initial o; o is learned)
    "log_std_min": -20.0,  # CORL ReparameterizedTanhGaussian: log_std_min -20
    "log_std_max": 2.0,  # CORL ReparameterizedTanhGaussian: log_std_max 2
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "critic_lr": "(0, inf)",
    "alpha_lr": "(0, inf)",
    "alpha_prime_lr": "(0, inf)",
    "discount": "(0, 1)",
    "tau": "(0, 1]",
    "cql_alpha": "[0, inf)",
    "cql_n_actions": "[1, inf)",
    "cql_temp": "(0, inf)",
    "bc_steps": "[0, inf)",
    "exploration_noise": "[0, inf)",
}


def cql_logsumexp(q_rand, q_pi_s, logp_pi_s, q_pi_next, logp_pi_next, act_dim: int, temp: float = 1.0):
    """temp * logsumexp over the 3N importance-weighted Q values; inputs (..., N, B); output (..., B)."""
    random_density = act_dim * jnp.log(0.5)
    cat = jnp.concatenate([q_rand - random_density, q_pi_next - logp_pi_next, q_pi_s - logp_pi_s], axis=-2)
    return temp * logsumexp(cat / temp, axis=-2)


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    critic_hidden = tuple(config["critic_hidden_dims"] or hidden)
    actor = ScaledTanhGaussianActor(
        spec.act_dim,
        hidden,
        log_std_min=float(config["log_std_min"]),
        log_std_max=float(config["log_std_max"]),
        log_std_multiplier=float(config["log_std_multiplier"]),
        log_std_offset=float(config["log_std_offset"]),
    )
    critic = critic_ensemble(critic_hidden, 2, out_scheme="orthogonal_1e-2")  # CORL: orthogonal_init true
    discount, tau = config["discount"], config["tau"]
    cql_alpha, n, temp = config["cql_alpha"], int(config["cql_n_actions"]), config["cql_temp"]
    lagrange, gap = bool(config["lagrange"]), config["target_action_gap"]
    max_backup = bool(config["max_target_backup"])
    clip_lo = -jnp.inf if config["cql_clip_diff_min"] is None else float(config["cql_clip_diff_min"])
    clip_hi = jnp.inf if config["cql_clip_diff_max"] is None else float(config["cql_clip_diff_max"])
    target_entropy = -float(spec.act_dim) if config["target_entropy"] is None else float(config["target_entropy"])
    act_dim = spec.act_dim

    def policy(params, obs, key, num=None):
        """Sampled actions and log-probs; with ``num``: shape (num, B, ...), one batched draw."""
        mean, log_std = actor.apply(params, obs)
        if num is not None:
            mean, log_std = (jnp.broadcast_to(x, (num,) + x.shape) for x in (mean, log_std))
        return tanh_gaussian_sample(key, mean, log_std)

    def init(key):
        k_a, k_c = jax.random.split(key)
        obs, act = jnp.zeros((1, spec.obs_dim)), jnp.zeros((1, spec.act_dim))
        critic_params = critic.init(k_c, obs, act)
        return {
            "actor": TrainState.create(actor.init(k_a, obs), optax.adam(config["actor_lr"])),
            "critic": TrainState.create(critic_params, optax.adam(config["critic_lr"])),
            "target_critic": critic_params,
            "log_alpha": TrainState.create(jnp.zeros(()), optax.adam(config["alpha_lr"])),
            "log_alpha_prime": TrainState.create(
                jnp.full((), float(config["log_alpha_prime_init"])), optax.adam(config["alpha_prime_lr"])
            ),
            "step": jnp.zeros((), jnp.int32),
        }

    def update(state, batch, key):
        k_pi, k_next, k_rand, k_cs, k_cn = jax.random.split(key, 5)
        obs, act, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        alpha = jnp.exp(state["log_alpha"].params)

        # actor (SAC), BC during the first bc_steps
        def actor_loss(params):
            new_act, logp = policy(params, obs, k_pi)
            q_new = critic.apply(state["critic"].params, obs, new_act).min(0)
            mean, log_std = actor.apply(params, obs)
            objective = jnp.where(state["step"] < config["bc_steps"], tanh_gaussian_log_prob(act, mean, log_std), q_new)
            return (alpha * logp - objective).mean(), logp

        (a_loss, logp), g = jax.value_and_grad(actor_loss, has_aux=True)(state["actor"].params)
        actor_state = state["actor"].apply_gradients(g)

        # entropy temperature
        def alpha_loss(log_alpha):
            return -(log_alpha * jax.lax.stop_gradient(logp + target_entropy)).mean()

        al_loss, g = jax.value_and_grad(alpha_loss)(state["log_alpha"].params)
        log_alpha_state = state["log_alpha"].apply_gradients(g)

        # critic: TD target with the policy's next action
        if max_backup:  # CORL: max over N sampled next actions of the twin minimum, its log-prob gathered
            next_act, next_logp = policy(state["actor"].params, next_obs, k_next, n)  # (N, B, A), (N, B)
            next_q_all = critic.apply(
                state["target_critic"], jnp.broadcast_to(next_obs, (n,) + next_obs.shape), next_act
            ).min(0)  # (N, B)
            best = jnp.argmax(next_q_all, axis=0)
            next_q = jnp.take_along_axis(next_q_all, best[None], 0)[0]
            next_logp = jnp.take_along_axis(next_logp, best[None], 0)[0]
        else:
            next_act, next_logp = policy(state["actor"].params, next_obs, k_next)
            next_q = critic.apply(state["target_critic"], next_obs, next_act).min(0)
        if config["backup_entropy"]:
            next_q = next_q - alpha * next_logp
        target = batch["rewards"] + discount * (1.0 - batch["terminals"]) * next_q

        # the CQL(H) samples: N uniform, N from pi(.|s), N from pi(.|s'), all evaluated at s
        rand_act = jax.random.uniform(k_rand, (n,) + act.shape, minval=-1.0, maxval=1.0)
        pi_s, logp_s = policy(state["actor"].params, obs, k_cs, n)
        pi_next, logp_next = policy(state["actor"].params, next_obs, k_cn, n)
        obs_n = jnp.broadcast_to(obs, (n,) + obs.shape)
        alpha_prime = jnp.clip(jnp.exp(state["log_alpha_prime"].params), 0.0, 1e6)

        def critic_loss(params):
            q = critic.apply(params, obs, act)  # (2, B)
            q_rand = critic.apply(params, obs_n, rand_act)  # (2, N, B)
            q_s = critic.apply(params, obs_n, pi_s)
            q_next = critic.apply(params, obs_n, pi_next)
            lse = cql_logsumexp(q_rand, q_s, logp_s, q_next, logp_next, act_dim, temp)  # (2, B)
            diff = jnp.clip(lse - q, clip_lo, clip_hi).mean(-1)  # (2,), clipped per sample
            penalty = cql_alpha * (alpha_prime * (diff - gap) if lagrange else diff)
            td = ((q - target) ** 2).mean(-1)
            return (td + penalty).sum(), (q, diff, td)

        (q_loss, (q, diff, td)), g = jax.value_and_grad(critic_loss, has_aux=True)(state["critic"].params)
        critic_state = state["critic"].apply_gradients(g)

        # Lagrange multiplier alpha' >= 0 (maximises the penalty; no-op unless ``lagrange``)
        def alpha_prime_loss(log_ap):
            ap = jnp.clip(jnp.exp(log_ap), 0.0, 1e6)
            return -(ap * cql_alpha * (jax.lax.stop_gradient(diff) - gap)).mean()

        ap_loss, g = jax.value_and_grad(alpha_prime_loss)(state["log_alpha_prime"].params)
        log_alpha_prime_state = state["log_alpha_prime"].apply_gradients(g) if lagrange else state["log_alpha_prime"]

        new_state = {
            "actor": actor_state,
            "critic": critic_state,
            "target_critic": polyak(state["target_critic"], critic_state.params, tau),
            "log_alpha": log_alpha_state,
            "log_alpha_prime": log_alpha_prime_state,
            "step": state["step"] + 1,
        }
        return new_state, {
            "critic_loss": q_loss,
            "actor_loss": a_loss,
            "alpha_loss": al_loss,
            "alpha": alpha,
            "td_loss": td.mean(),
            "cql_diff": diff.mean(),
            "q": q.mean(),
            "alpha_prime": alpha_prime if lagrange else jnp.zeros(()),
            "alpha_prime_loss": ap_loss if lagrange else jnp.zeros(()),
        }

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        if deterministic:
            return jnp.tanh(mean)
        noise = config["exploration_noise"]
        if noise is None:
            return tanh_gaussian_sample(key, mean, log_std)[0]
        return jnp.clip(jnp.tanh(mean) + noise * jax.random.normal(key, mean.shape), -1.0, 1.0)

    return Agent(init, update, act)


register(
    "cql",
    make=make,
    default_config=DEFAULT_CONFIG,
    description="Conservative Q-Learning, CQL(H) on SAC (Kumar et al., 2020)",
    ranges=RANGES,
)
