"""Kitchen datasets rebuilt with the scripted demonstrator (:mod:`offbench.recipes.kitchen_demo`).

D4RL's kitchen datasets are human teleoperation data (Relay Policy Learning's demos) that cannot be downloaded
here, so these are "rebuilt (scripted)": every demo is the demonstrator running four subtask primitives in
``FrankaKitchen-v1`` with variety like human data (see the constants below). D4RL's composition
(``d4rl/kitchen/__init__.py``, ``d4rl/kitchen/kitchen_envs.py``):

* one **pool** of undirected demos, each doing four of the seven subtasks in some order; a subset of it
  (D4RL: 3,680 of 136,950 transitions, 2.7%) does the ``complete`` target sequence;
* ``kitchen-complete-v0``: that subset alone, target ``KitchenMicrowaveKettleLightSliderV0`` (microwave,
  kettle, light switch, slide cabinet);
* ``kitchen-partial-v0``: the whole pool relabelled for the *same* target (only the complete subset
  solves it);
* ``kitchen-mixed-v0``: the whole pool relabelled for ``KitchenMicrowaveKettleBottomBurnerLightV0``
  (microwave, kettle, bottom burner, light switch); no demo does all four of these.

Each subtask's completion is recorded once per demo (the env's rule: joints within 0.3 of the goal), so relabelling
needs no new simulation. Rewards are D4RL's: the number of target tasks done so far (0-4); every demo's last step is
terminal (the last demo is cut to the dataset size: a truncation). Reference returns are D4RL's (0 and 4 tasks);
evaluation runs ``FrankaKitchen-v1`` with the target set and the 280-step limit (the eval-env spec stored with the
data; it terminates when every target task is done).
"""

from __future__ import annotations

import functools
import time
import warnings

import numpy as np

from offbench.recipes import kitchen_demo
from offbench.recipes.recipes import register_recipe

LABEL = "rebuilt (scripted)"
# 2: partial = complete's target, one relabelled pool, terminal at each demo's end;
# 3: per-demo styles (time scale, approach, grasp point, fumbles, OU drift) that change the data's mean action
# 4: DART pushes of the executed actions (DISTURB_SIGMA); the pool's plans are the human demos' (RPL_PLANS)
# 5: D4RL's observation noise on the robot's joints (ROBOT_NOISE_RATIO 0.1), in collection and evaluation
# 6: the demonstrator opens the slide cabinet after the hinge cabinet (6 of 24 plans; kitchen_demo.SLIDE_YAW)
# 7: DART's push keeps its strength to 3 cm of a target (kitchen_demo.PUSH_FADE 0.03; 0.1 before)
RECIPE_VERSION = 7
EPISODE_STEPS = 280  # FrankaKitchen-v1's (and D4RL's) limit, for evaluation
# v3: a demo may run past the evaluation's 280 steps (a slow operator's is not cut): with the styles' slow-downs
# 9 of 10 ran out (docs/kitchen.md "recipe v3"); a 280-step cut kept 1 demo in 6, BC 3.3 against 49.2 (session 9)
DEMO_STEPS = 400
COMPLETE = ("microwave", "kettle", "light switch", "slide cabinet")  # KitchenMicrowaveKettleLightSliderV0
MIXED = ("microwave", "kettle", "bottom burner", "light switch")  # KitchenMicrowaveKettleBottomBurnerLightV0
TARGETS = {"complete": COMPLETE, "partial": COMPLETE, "mixed": MIXED}
SIZES = {"complete": 3680, "partial": 136950, "mixed": 136950}  # D4RL's transition counts
COMPLETE_SHARE = SIZES["complete"] / SIZES["partial"]  # 2.69% of the pool is the complete subset
POOL = ("microwave", "kettle", "bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet")
# Recipe v4: the pool's plans are the human demos' (D4RL's kitchen data are Relay Policy Learning's
# kitchen_demos_multitask.zip, one folder per planned sequence, e.g. friday_microwave_kettle_switch_slide = the
# complete target): the 24 other folders' sequences (bottomknob = bottom burner, topknob = top burner, switch =
# light switch, slide / hinge = the cabinets). The operators kept one precedence (microwave, kettle, knobs,
# switch, cabinets): 14 of the 24 start with the microwave, 8 with the kettle, 2 with the top knob. Versions 1-3
# drew any four of the seven in any order (1 in 7 started with the microwave). (BC on the v4 pool still heads for
# the kettle first: docs/kitchen.md "Recipe v4".) The zip is Git LFS; its folder names are those listed in copies of RPL's
# adept_envs/utils/parse_demos.py (demo_dirs) and in a cleaning note on the zip (docs/kitchen.md "Recipe v4");
# friday_ and postcorl_microwave_bottomknob_switch_slide are two folders with one plan, kept twice as in the zip.
_K, _M, _B, _T = "kettle", "microwave", "bottom burner", "top burner"
_S, _L, _H = "light switch", "slide cabinet", "hinge cabinet"
# fmt: off
RPL_PLANS = (
    (_K, _B, _H, _L), (_K, _B, _S, _L), (_K, _S, _H, _L), (_K, _T, _B, _L), (_K, _T, _S, _L),
    (_M, _B, _H, _L), (_M, _B, _S, _L), (_M, _K, _B, _H), (_M, _K, _B, _L), (_M, _K, _H, _L),
    (_M, _K, _T, _H), (_M, _K, _T, _S), (_M, _T, _B, _H), (_M, _T, _B, _L), (_T, _B, _S, _L),
    (_T, _B, _H, _L),  # friday_*
    (_K, _B, _S, _H), (_K, _T, _B, _H), (_K, _T, _B, _S), (_M, _B, _S, _L), (_M, _K, _S, _H),
    (_M, _S, _H, _L), (_M, _T, _B, _S), (_M, _T, _S, _H),  # postcorl_*
)
# fmt: on
ACTION_NOISE = 0.1  # std of Gaussian noise on the demonstrator's actions, before clipping to [-1, 1]
START_NOISE = 0.08  # start posture: uniform +-0.08 rad on each arm joint (no source; the env's reset has none:
# 0, measured on three builds, read lower, docs/kitchen.md "Three candidates for a version 5")
PAUSE_MAX = 4  # 0..4 idle steps before each subtask
VERSION = "kitchen-demo/3"
# Recipe v3: each demo's persistent style (kitchen_demo.Style), drawn once per demo: D4RL's kitchen data are human
# demos (Relay Policy Learning, Gupta et al. 2019: VR teleoperation) whose speed, approach and hesitations differ
# between demos through the same state; a scripted demonstrator plus i.i.d. noise is averaged away by BC (issue 29).
# The spreads are issue 29's, x STYLE_SCALE. On complete (docs/kitchen.md "Recipe v3"): proxy 100 / 75 / 50 at scale 0 /
# 0.5 / 1; BC at 100k 10.8 at 0, 30.8 at 0.5 (coverage at the light switch, not the mean); 0.5 kept, the most BC.
STYLE_SCALE = 0.5
TIME_SCALE = (0.5, 1.5)  # each primitive's duration x U(0.5, 1.5) (issue 29)
APPROACH_SPREAD = 0.05  # pre-grasp point shifted U(-5, 5) cm across the approach (x, z): "a few cm" (issue 29)
GRASP_SHIFT = 0.02  # grasp U(-2, 2) cm higher/lower on the vertical handles (microwave, cabinets)
VERTICAL_HANDLES = ("microwave", "slide cabinet", "hinge cabinet")
FUMBLE_P = 0.15  # probability that a subtask's first grasp misses (3 cm beside the handle) and is retried
FUMBLE_MISS = 0.03
# (FUMBLE_P 1.0 with 5 cm, and a demonstrator whose microwave grasp rarely misses, were measured on three builds:
# BC read lower, not higher; docs/kitchen.md "Three candidates for a version 5")
OU_SIGMA = 0.01  # stationary std (m) of the OU drift of the end-effector target: "a few cm" (issue 29)
OU_TAU = 10.0  # its correlation time in steps (0.8 s)
# Recipe v4, DART (Laskey et al. 2017): an OU push of the hand (m/s, stationary std per axis) in the *executed*
# actions only, so the data holds the demonstrator's corrections from off its path (kitchen_rollout.run_tasks).
# BC failed on v3 for coverage (it missed the light switch by 7-15 cm off 12 near-identical demos), not the mean.
# Calibration (complete, style scale 0.5, one build; docs/kitchen.md "Recipe v4"): sigma 0 / 0.1 read 29.2 / 49.2
# at 60k, 0.2 0.0 at 20k (the kept demos are slow survivors). On three and ten builds 0.1 read 28.9 and
# 19.6 (sessions 5 and 8), with DART alone 32.8 (session 9): all on the 59-d observation, whose joint velocities
# carry the last action (BC copied it). On D4RL's 30 joint positions (data.tasks.KITCHEN_POSITIONS; session 10)
# the same version-4 builds read 55.0 +- 10.9 at 60k (data seeds 0-2; rebuilt_bc.csv): D4RL's 65 within 10.
DISTURB_SIGMA = 0.1
DISTURB_TAU = OU_TAU  # its correlation time in steps: not calibrated, the v3 OU drift's (0.8 s)
# Recipe v5: the robot's observation noise, in collection and in the evaluation env stored with the data, is
# D4RL's: robot_noise_ratio 0.1 (d4rl/kitchen/adept_envs/franka/kitchen_multitask_v0.py:43) x pos_noise_amp 0.1
# (franka_config.xml), uniform +-0.01 rad on each joint reading, which the next velocity command integrates from
# (FrankaKitchen-v1 keeps the port: franka_env.py _last_robot_qpos). D4RL recorded its human demos and
# evaluated BC in that env (the demonstrator's action is taken from the noisy reading as D4RL's demo parser takes
# it, kitchen_demo.Demonstrator.action). FrankaKitchen-v1's default is 0.01 (versions 1-4). The objects keep
# FrankaKitchen-v1's object noise (D4RL: 0.1 x their amplitudes, +-0.01 on the doors and the kettle's rotation).
# BC measured on it: docs/kitchen.md "Session 11 of wave 3" (complete 53.8, six builds) and "Session 12" (version 6).
ROBOT_NOISE_RATIO = 0.1


def _env(targets, terminate=True, steps=EPISODE_STEPS):
    from offbench.recipes.kitchen_rollout import make_env

    return make_env(
        list(targets),
        max_episode_steps=steps,
        terminate_on_tasks_completed=terminate,
        robot_noise_ratio=ROBOT_NOISE_RATIO,
    )


def undirected_order(rng) -> list[str]:
    """One of the human demos' plans other than the complete sequence (:data:`RPL_PLANS`), uniformly: four
    subtasks in the order the operators did them, covering neither target set."""
    return list(RPL_PLANS[int(rng.integers(len(RPL_PLANS)))])


def draw_style(rng: np.random.Generator, order, scale: float | None = None):
    """One demo's persistent style for the subtasks of ``order`` (recipe v3); ``scale`` multiplies every
    spread (default :data:`STYLE_SCALE`; 0: the version-2 demonstrator; the calibration script varies it)."""
    scale = STYLE_SCALE if scale is None else float(scale)
    from offbench.recipes.kitchen_demo import Style

    lo, hi = 1 + scale * (TIME_SCALE[0] - 1), 1 + scale * (TIME_SCALE[1] - 1)
    time_scale, approach, shift, fumble = {}, {}, {}, {}
    for t in order:
        time_scale[t] = float(rng.uniform(lo, hi))
        dx, dz = rng.uniform(-APPROACH_SPREAD, APPROACH_SPREAD, 2) * scale
        approach[t] = np.array([dx, 0.0, dz])
        dzg = rng.uniform(-GRASP_SHIFT, GRASP_SHIFT) * scale if t in VERTICAL_HANDLES else 0.0
        shift[t] = np.array([0.0, 0.0, dzg])
        side = rng.uniform(0, 2 * np.pi)
        if rng.uniform() < FUMBLE_P * scale:
            fumble[t] = FUMBLE_MISS * np.array([np.cos(side), 0.0, np.sin(side)])
    return Style(time_scale, approach, shift, fumble, ou_sigma=OU_SIGMA * scale, ou_tau=OU_TAU)


def demo(order, seed: int, rng: np.random.Generator, env, style_scale: float | None = None) -> dict:
    """One recorded demo of ``order`` with the step at which each of the seven subtasks was first done."""
    from offbench.recipes.kitchen_rollout import run_tasks

    style = draw_style(rng, order, style_scale)

    out = run_tasks(
        env,
        list(order),
        seed,
        targets=list(POOL),
        action_noise=ACTION_NOISE,
        start_noise=START_NOISE,
        pause_max=PAUSE_MAX,
        record=True,
        rng=rng,
        max_steps=DEMO_STEPS,
        style=style,
        disturb_sigma=DISTURB_SIGMA,
        disturb_tau=DISTURB_TAU,
    )
    return {
        "order": list(order),
        "observation": out["observations"],
        "achieved_goal": out["achieved_goal"],
        "actions": out["actions"],
        "done_at": dict(zip(out["completed"], out["completed_at"])),
    }


def solves(d: dict, targets) -> bool:
    return all(t in d["done_at"] for t in targets)


def relabel(d: dict, targets, cut: int | None = None) -> dict:
    """The demo as an episode for ``targets``: reward = target tasks done so far; terminal at its last step."""
    T = len(d["actions"]) if cut is None else int(cut)
    step = np.arange(1, T + 1)  # done_at counts env steps from 1
    rewards = sum((step >= d["done_at"][t]).astype(np.float64) for t in targets if t in d["done_at"])
    rewards = np.zeros(T) + rewards
    term, trunc = np.zeros(T, bool), np.zeros(T, bool)
    (trunc if T < len(d["actions"]) else term)[-1] = True
    goals = {t: _goal(t) for t in targets}
    return {
        "observations": {
            "observation": d["observation"][: T + 1],
            "achieved_goal": {t: d["achieved_goal"][t][: T + 1] for t in targets},
            "desired_goal": {t: np.repeat(goals[t][None], T + 1, axis=0) for t in targets},
        },
        "actions": d["actions"][:T],
        "rewards": rewards,
        "terminations": term,
        "truncations": trunc,
    }


def _goal(task):
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS

    return np.asarray(OBS_ELEMENT_GOALS[task], np.float64)


def _demos(stream: str, seed: int, need, env, stats: dict, bar=None) -> list[dict]:
    """Demos of one stream ("complete": the complete sequence, successful only; "undirected": random
    orders, none solving either target) until ``need(demos)`` is satisfied."""
    rng = np.random.default_rng([int(seed), 0 if stream == "complete" else 1])
    out, k = [], 0
    while not need(out):
        order = list(COMPLETE) if stream == "complete" else undirected_order(rng)
        d = demo(order, (int(seed) * 1_000_003 + 2 * k + (stream != "complete")) % (2**31 - 1), rng, env)
        k += 1
        keep = solves(d, COMPLETE) if stream == "complete" else not (solves(d, COMPLETE) or solves(d, MIXED))
        if not keep:
            stats[f"dropped_{stream}"] = stats.get(f"dropped_{stream}", 0) + 1
            if stats[f"dropped_{stream}"] > 50 + 2 * len(out):
                from offbench.errors import OffbenchError

                raise OffbenchError(
                    f"the kitchen demonstrator failed on {stats[f'dropped_{stream}']} {stream} demos; "
                    f"run scripts/measure_kitchen.py to see which subtask breaks"
                )
            continue
        out.append(d)
        if bar is not None:
            bar.update(len(d["actions"]))
    return out


@functools.lru_cache(maxsize=2)
def pool(size: int, seed: int = 0, progress: bool = False) -> tuple[list[dict], dict]:
    """The undirected pool of ``size`` transitions: whole complete-sequence demos up to
    :data:`COMPLETE_SHARE` of it (at least one), then undirected demos (the last one cut later). Cached:
    partial and mixed are the same pool."""
    env = _env(POOL, terminate=False, steps=DEMO_STEPS)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=size, desc="kitchen demo pool", unit="step")
    t0, stats = time.time(), {}
    share = max(1, round(COMPLETE_SHARE * size))
    comp = _demos("complete", seed, lambda ds: sum(len(d["actions"]) for d in ds) >= share, env, stats, bar)
    n = sum(len(d["actions"]) for d in comp)
    und = _demos("undirected", seed, lambda ds: n + sum(len(d["actions"]) for d in ds) >= size, env, stats, bar)
    env.close()
    if bar is not None:
        bar.close()
    stats.update(seconds=round(time.time() - t0, 1), complete_demos=len(comp), undirected_demos=len(und))
    return comp + und, stats


def episodes_for(kind: str, size: int, seed: int = 0, progress: bool = False) -> tuple[list[dict], dict]:
    """The demos of dataset ``kind`` relabelled for its targets, cut to ``size`` transitions."""
    targets = TARGETS[kind]
    if kind == "complete":
        stats: dict = {}
        env = _env(POOL, terminate=False, steps=DEMO_STEPS)
        demos = _demos("complete", seed, lambda ds: sum(len(d["actions"]) for d in ds) >= size, env, stats)
        env.close()
    else:
        demos, stats = pool(size, seed, progress)
    eps, n = [], 0
    for d in demos:
        take = min(len(d["actions"]), size - n)
        if take <= 0:
            break
        eps.append(relabel(d, targets, cut=take))
        n += take
    solved = [solves(d, targets) for d in demos[: len(eps)]]
    card = {
        "episodes": len(eps),
        "transitions": n,
        "episodes_solving_targets": int(sum(solved)),
        "transitions_solving_targets_fraction": round(
            sum(len(e["actions"]) for e, s in zip(eps, solved) if s) / max(n, 1), 4
        ),
        "mean_targets_completed": round(float(np.mean([e["rewards"][-1] for e in eps])), 3),
        "orders": _order_counts(demos[: len(eps)]),
    }
    return eps, {**stats, **card}


def _order_counts(demos) -> dict:
    counts: dict = {}
    for d in demos:
        key = " > ".join(d["order"])
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:20])


def build(kind: str, size=None, seed: int = 0, behavior_dir=None, progress: bool = False) -> str:
    """Write the Minari dataset ``rebuilt/kitchen-<kind>-v0`` and return its id."""
    from offbench.recipes.common import resolve_size
    from offbench.recipes.writer import write_minari

    name = f"kitchen-{kind}-v0"
    n = resolve_size(size, SIZES[kind])
    eps, stats = episodes_for(kind, n, seed, progress)
    targets = TARGETS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = _env(targets)
    provenance = {
        "label": LABEL,
        "recipe": name,
        "recipe_version": RECIPE_VERSION,
        "demonstrator": VERSION,
        "composition": {
            "complete": "the complete-sequence demos (microwave > kettle > light switch > slide cabinet), "
            "successful only",
            "partial": f"the demo pool ({COMPLETE_SHARE:.2%} complete-sequence demos, the rest four "
            "other subtasks each) relabelled for the complete target",
            "mixed": "the same demo pool relabelled for microwave, kettle, bottom burner, light switch "
            "(no demo does all four)",
        }[kind],
        "targets": list(targets),
        "subtask_pool": list(POOL),
        "seed": int(seed),
        "action_noise_std": ACTION_NOISE,
        "start_posture_noise_rad": START_NOISE,
        "pause_steps_max": PAUSE_MAX,
        "style": {
            "scale": STYLE_SCALE,
            "time_scale": list(TIME_SCALE),
            "approach_spread_m": APPROACH_SPREAD,
            "grasp_shift_m": GRASP_SHIFT,
            "fumble_p": FUMBLE_P,
            "fumble_miss_m": FUMBLE_MISS,
            "ou_sigma_m": OU_SIGMA,
            "ou_tau_steps": OU_TAU,
        },
        "reach": {
            "funnel": kitchen_demo.FUNNEL,
            "funnel_skip": list(kitchen_demo.FUNNEL_SKIP),
            "settle_steps": kitchen_demo.SETTLE,
            "slide_after_hinge": {
                "hinge_ajar_rad": kitchen_demo.HINGE_AJAR,
                "yaw_rad": kitchen_demo.SLIDE_YAW,
                "via_m": kitchen_demo.SLIDE_VIA,
            },
        },
        "disturbance": {
            "sigma_m_per_s": DISTURB_SIGMA,
            "tau_steps": DISTURB_TAU,
            "fade_m": kitchen_demo.PUSH_FADE,
            "in_recorded_actions": False,
        },
        "robot_noise_ratio": ROBOT_NOISE_RATIO,
        "episode_steps": EPISODE_STEPS,
        "demo_steps_max": DEMO_STEPS,
        "reward": "number of target tasks completed so far (D4RL)",
        "terminals": "the last step of every demo",
        "collection": stats,
    }
    dataset_id = f"rebuilt/{name}"
    write_minari(
        dataset_id,
        eps,
        env,
        env,
        ref_min_score=0.0,
        ref_max_score=4.0,
        description=f"{name} rebuilt (scripted): a scripted IK demonstrator in FrankaKitchen-v1 instead of "
        f"D4RL's human teleoperation; targets {', '.join(targets)}",
        provenance=provenance,
        algorithm_name="offbench-scripted-kitchen-demonstrator",
    )
    env.close()
    return dataset_id


def _register():
    for kind in TARGETS:
        register_recipe(
            f"kitchen-{kind}-v0",
            "kitchen",
            lambda size=None, seed=0, behavior_dir=None, progress=False, _k=kind: build(
                _k, size, seed, behavior_dir, progress
            ),
            SIZES[kind],
            label=LABEL,
            version=RECIPE_VERSION,
            description=f"kitchen-{kind}-v0 rebuilt (scripted): IK demonstrator in FrankaKitchen-v1, "
            f"{SIZES[kind]} transitions (D4RL's size)",
        )


_register()
