"""The steered Ant expert (its symmetry maths against MuJoCo itself, its planner, reaching a goal) and the
AntMaze rebuild recipes (tiny builds read back through the Minari loader and the pipeline's resolver)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from offbench.errors import OffbenchError
from offbench.recipes import ant_controller as ac

BEHAVIOR = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_expert = pytest.mark.skipif(
    not (BEHAVIOR / ac.POLICY_FILE).exists(), reason="../shared/data/policies/ant-expert.npz is not present"
)


@pytest.fixture(scope="module")
def ant():
    import gymnasium as gym

    env = gym.make("Ant-v4", use_contact_forces=True)
    env.reset(seed=0)
    yield env.unwrapped
    env.close()


def _set(u, qpos, qvel):
    """Put a state into the simulator and compute what the expert would read (contact forces included)."""
    import mujoco

    u.data.qpos[:], u.data.qvel[:] = qpos, qvel
    mujoco.mj_forward(u.model, u.data)
    mujoco.mj_rnePostConstraint(u.model, u.data)
    return ac.mj_state(u.data)


def _random_state(rng, z=0.6):
    q = rng.normal(size=4)
    q *= np.sign(q[0]) / np.linalg.norm(q)  # w >= 0, as the expert saw it
    return np.r_[rng.normal(size=2), z, q, rng.uniform(-0.5, 0.5, 8)], rng.normal(size=14)


def _perm(k):
    real, _ = ac._leg_maps(k)
    return [0, 1] + [2 + 3 * r + i for r in real for i in range(3)]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_relabelling_describes_the_same_physical_state(ant, k):
    rng = np.random.default_rng(k)
    qpos, qvel = _random_state(rng)
    _set(ant, qpos, qvel)
    xpos, cvel = np.array(ant.data.xpos), np.array(ant.data.cvel)
    p, v, _ = ac.relabel_state(qpos, qvel, np.zeros((14, 6)), k)
    _set(ant, p, v)
    # every body of virtual leg j sits (and moves) exactly where the body of real leg j + k did
    np.testing.assert_allclose(ant.data.xpos, xpos[_perm(k)], atol=1e-9)
    np.testing.assert_allclose(ant.data.cvel, cvel[_perm(k)], atol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_relabelled_observation_of_a_turned_state_equals_the_original(ant, k):
    """State B is state A described with the torso frame turned by -90k degrees (the inverse labelling);
    relabelling B's observation by k must give A's observation exactly, contact forces included."""
    rng = np.random.default_rng(10 + k)
    qpos, qvel = _random_state(rng, z=0.45)  # low: feet touch the floor, contact forces are non-zero
    A = _set(ant, qpos, qvel)
    assert np.abs(A[2][2:]).sum() > 0
    pb, vb, _ = ac.relabel_state(qpos, qvel, A[2], -k)
    B = _set(ant, pb, vb)
    np.testing.assert_allclose(ac.expert_input(*ac.relabel_state(*B, k)), ac.expert_input(*A), atol=1e-6)
    # four quarter turns are the identity
    s = A
    for _ in range(4):
        s = ac.relabel_state(*s, 1)
    for a, b in zip(s, A):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_virtual_action_maps_back_to_the_same_torques(ant, k):
    """Stepping the real state with the mapped-back action = stepping the relabelled state with the
    virtual action (the Ant in the air, so no contact solver is involved)."""
    import mujoco

    rng = np.random.default_rng(20 + k)
    qpos, qvel = _random_state(rng, z=3.0)
    a_virtual = rng.uniform(-1, 1, 8)
    _set(ant, qpos, qvel)
    ant.data.ctrl[:] = ac.unrelabel_action(a_virtual, k)
    mujoco.mj_step(ant.model, ant.data, 5)
    real_next = ac.relabel_state(*ac.mj_state(ant.data), k)
    p, v, _ = ac.relabel_state(qpos, qvel, np.zeros((14, 6)), k)
    _set(ant, p, v)
    ant.data.ctrl[:] = a_virtual
    mujoco.mj_step(ant.model, ant.data, 5)
    virt_next = ac.mj_state(ant.data)
    np.testing.assert_allclose(real_next[0], virt_next[0], atol=1e-8)
    np.testing.assert_allclose(real_next[1], virt_next[1], atol=1e-6)


@pytest.mark.parametrize("rot", [0.4, 2.5, -3.0])
def test_frame_rotation_equals_a_physically_turned_state(ant, rot):
    rng = np.random.default_rng(30)
    qpos, qvel = _random_state(rng, z=0.45)
    A = _set(ant, qpos, qvel)
    p, v, c = ac.rotate_state(*A, rot)
    assert p[3] >= 0.0  # never a quaternion with negative w
    turned = p.copy()
    turned[3:7] = ac.quat_mul(ac.qz(rot), qpos[3:7])
    C = _set(ant, turned, v)  # the world turned about z through the origin
    np.testing.assert_allclose(c, C[2], atol=1e-6)
    assert (
        ac.yaw_of(p[3:7]) == pytest.approx(ac.wrap(ac.yaw_of(qpos[3:7]) + rot), abs=1e-9)
        or abs(ac.up_z(qpos[3:7])) < 0.99
    )  # yaw is only additive for a level torso


def test_planner_path_and_aim_point():
    from offbench.recipes.antmaze import maze_layout

    plain, start, goal = maze_layout("antmaze-umaze-v2")
    grid = ac.MazeGrid(plain)
    assert (start, goal) == ((1, 1), (3, 1))
    assert grid.path(start, goal) == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    assert grid.cell_of(grid.cell_xy((2, 3))) == (2, 3)
    pts = [np.zeros(2), np.array([3.0, 0.0]), np.array([3.0, 4.0])]
    np.testing.assert_allclose(ac.point_along(pts, 2.0), [2.0, 0.0])
    np.testing.assert_allclose(ac.point_along(pts, 5.0), [3.0, 2.0])
    np.testing.assert_allclose(ac.point_along(pts, 50.0), [3.0, 4.0])
    with pytest.raises(OffbenchError):
        ac.MazeGrid([[1, 1, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1]]).path((1, 1), (1, 3))


def test_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(OffbenchError, match="behavior-dir"):
        ac.load_expert(tmp_path)


@needs_expert
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steered_expert_reaches_the_umaze_goal(seed):
    """From the evaluation start to the evaluation goal within the evaluation step limit (700)."""
    from offbench import envs
    from offbench.data.suites import get_suite

    task = get_suite("antmaze").task("antmaze-umaze-v2")
    env = envs.make_env(task.env_id, task.env_kwargs, task.max_episode_steps)
    env.reset(seed=seed)
    u = env.unwrapped
    ctl = ac.SteeredAnt(
        ac.load_expert(BEHAVIOR), [[0 if isinstance(c, str) else c for c in r] for r in task.env_kwargs["maze_map"]]
    )
    reached = None
    for t in range(task.max_episode_steps):
        _, _, term, trunc, info = env.step(np.clip(ctl.act(u.ant_env.data, u.goal), -1, 1))
        assert not ac.is_flipped(u.ant_env.data)
        if info["success"]:
            reached = t
            break
        assert not (term or trunc)
    env.close()
    assert reached is not None, "the steered Ant did not reach the UMaze goal in 700 steps"


# ---------------------------------------------------------------------------------------------------
# recipes


def test_all_six_recipes_are_registered():
    from offbench.recipes.recipes import get_recipe

    for k in ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse"):
        r = get_recipe(f"antmaze-{k}-v2")
        assert r is not None and r.suite == "antmaze" and r.default_size == 1_000_000
        assert r.label == "rebuilt (steered expert)" and r.version >= 2


@pytest.mark.parametrize(
    "name,cell",
    [("antmaze-umaze-v2", (3, 1)), ("antmaze-medium-play-v2", (6, 6)), ("antmaze-large-diverse-v2", (7, 9))],
)
def test_eval_goal_is_the_centre_of_the_goal_cell_and_radius_is_d4rls(name, cell):
    from offbench import envs
    from offbench.data.suites import get_suite
    from offbench.data.tasks import ANTMAZE_GOAL_RADIUS, eval_goal_cell, eval_goal_xy

    task = get_suite("antmaze").task(name)
    assert ANTMAZE_GOAL_RADIUS == 0.5  # D4RL goal_reaching_env.py / relabel_antmaze_rewards.py
    assert eval_goal_cell(task) == cell
    env = envs.make_env(task.env_id, task.env_kwargs, task.max_episode_steps)
    np.testing.assert_allclose(eval_goal_xy(task), env.unwrapped.maze.cell_rowcol_to_xy(np.array(cell)))
    env.close()


def test_relabel_rewards_only_within_the_radius_of_the_evaluation_goal():
    """D4RL's relabel: reward = terminal = ||xy' - g_eval|| <= 0.5, whatever the commanded goal was."""
    from offbench.recipes.antmaze import Collector

    col = Collector.__new__(Collector)  # only the relabel: no environment, no policy
    col.eval_goal_xy = np.array([-4.0, -4.0])
    d = np.array([0.0, 0.3, 0.46, 0.49, 0.51, 0.7, 4.0])  # 0.46, 0.49: inside 0.5, outside 0.45
    xy = col.eval_goal_xy + np.c_[d * np.cos(1.0), d * np.sin(1.0)]
    np.testing.assert_array_equal(col.relabel(xy), [1, 1, 1, 1, 0, 0, 0])


@needs_expert
@pytest.mark.parametrize(
    "name", ["umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse"]
)
def test_tiny_build_reads_back_through_minari(name):
    from offbench.data import sources
    from offbench.data.suites import get_suite
    from offbench.data.tasks import ANTMAZE_GOAL_RADIUS, eval_goal_xy
    from offbench.recipes.antmaze import EPISODE_STEPS, PLAY_GOALS
    from offbench.recipes.recipes import get_recipe

    d4rl = f"antmaze-{name}-v2"
    assert EPISODE_STEPS == 1001  # D4RL: the timeout after 1001 steps
    size = 1300  # one full 1001-step episode and a cut one
    assert get_recipe(d4rl).build(size, 3, BEHAVIOR, False) == f"rebuilt/{d4rl}"
    suite = get_suite("antmaze")
    task = suite.task(d4rl)
    src = sources.resolve(suite, d4rl, {})
    ds = src.dataset
    assert src.kind == "rebuilt" and ds.metadata["rebuilt"]
    assert len(ds) == size and ds.obs_dim == 29 and ds.act_dim == 8  # D4RL's layout: x, y, then 27
    assert np.all(np.abs(ds.actions) <= 1.0)
    # rewards relabelled to the evaluation goal; terminals exactly where the reward is 1
    dist = np.linalg.norm(ds.next_observations[:, :2] - np.asarray(eval_goal_xy(task)), axis=-1)
    np.testing.assert_array_equal(ds.rewards, (dist <= ANTMAZE_GOAL_RADIUS).astype(np.float32))
    np.testing.assert_array_equal(ds.terminals, ds.rewards)
    prov = json.loads(ds.metadata["provenance"])
    assert prov["transitions"] == size and prov["episodes"] == 2 and prov["recipe_version"] >= 2
    assert prov["rewarded_step_fraction"] == pytest.approx(ds.rewards.mean(), abs=1e-5)
    # evaluation: fixed start and goal from the suite's map, the same observation layout
    spec = json.loads(src.eval_env_spec)
    assert spec["kwargs"]["maze_map"] == task.env_kwargs["maze_map"]
    env = src.env_factory()()
    obs, _ = env.reset(seed=0)
    from offbench.envs import ObsAdapter

    assert ObsAdapter(src.obs_keys)(obs).shape == (29,)
    env.close()
    import minari

    eps = list(minari.load_dataset(f"rebuilt/{d4rl}").iterate_episodes())
    assert [len(ep.actions) for ep in eps] == [EPISODE_STEPS, size - EPISODE_STEPS]
    assert [bool(ep.truncations[-1]) for ep in eps] == [True, True] and not eps[0].truncations[:-1].any()
    maze = ac.MazeGrid(task.env_kwargs["maze_map"])
    goal_cells = {maze.cell_of(ep.observations["desired_goal"][0]) for ep in eps}
    starts = [ep.observations["achieved_goal"][0] for ep in eps]
    for ep in eps:  # D4RL: env.reset() at every timeout: each episode starts at rest (zero velocities)
        np.testing.assert_allclose(ep.observations["observation"][0][13:], 0.0, atol=1e-12)
    assert np.linalg.norm(starts[1] - eps[0].observations["achieved_goal"][-1]) > 1e-3
    if name == "umaze":
        assert goal_cells == {(3, 1)}
        assert {maze.cell_of(s) for s in starts} == {(1, 1)}
    elif name.endswith("play"):
        assert goal_cells <= set(PLAY_GOALS[name.split("-")[0]])


@needs_expert
def test_a_flipped_ant_stays_in_the_data_until_the_timeout():
    from offbench.recipes.antmaze import Collector

    col = Collector("umaze-diverse", ac.load_expert(BEHAVIOR), seed=0, episode_steps=50)
    reset = col._reset

    def upside_down_reset():
        obs = reset()
        col.u.ant_env.data.qpos[3:7] = [0.0, 1.0, 0.0, 0.0]  # torso upside down
        return obs

    col._reset = upside_down_reset
    ep = col.episode()
    assert ep["flipped"] and len(ep["actions"]) == 50  # no flip check ends the episode
    assert ep["truncations"][-1] and not ep["truncations"][:-1].any()
    assert col.stats["flipped_episodes"] == 1 and col.stats["flipped_steps"] > 0
    col._reset = reset
    ep2 = col.episode()  # the next episode is a fresh reset
    assert not ep2["flipped"] and len(ep2["actions"]) == 50
    col.close()


def test_unknown_antmaze_dataset_is_a_clear_error():
    from offbench.recipes.antmaze import Collector

    with pytest.raises(OffbenchError, match="known"):
        Collector("umaze-tiny", policy=None)


# ---------------------------------------------------------------------------------------------------
# recipe v3: per-episode perturbations (issue 29)


@needs_expert
def test_perturbation_is_constant_within_an_episode_and_differs_between_episodes():
    from offbench.recipes.antmaze import Collector

    col = Collector("umaze", ac.load_expert(BEHAVIOR), seed=0, episode_steps=15)
    seen = []
    act = col.controller.act

    def recording_act(data, goal):
        seen[-1].append((col.controller.heading_bias, col.controller.speed_factor))
        return act(data, goal)

    col.controller.act = recording_act
    draws, actions = [], []
    for _ in range(3):
        seen.append([])
        actions.append(col.episode()["actions"])
        draws.append(dict(col.perturbation))
    col.close()
    for ep, d in zip(seen, draws):
        assert len(ep) == 15 and len(set(ep)) == 1  # one bias and one speed factor for the whole episode
        assert ep[0] == pytest.approx((np.radians(d["heading_bias_deg"]), d["speed_factor"]))
        assert abs(d["heading_bias_deg"]) <= 30.0 and 0.5 <= d["speed_factor"] <= 1.5
    assert len({ep[0] for ep in seen}) == 3  # each episode its own draw
    # the same seed draws the same perturbations (and so builds the same data)
    col2 = Collector("umaze", ac.load_expert(BEHAVIOR), seed=0, episode_steps=15)
    for d, a in zip(draws, actions):
        np.testing.assert_array_equal(col2.episode()["actions"], a)
        assert col2.perturbation == d
    col2.close()


def test_detour_aims_at_its_cell_from_its_start_step_until_reached():
    from offbench.recipes.antmaze import DETOUR_REACHED_M, Detour

    grid = ac.MazeGrid([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]])
    goal = np.array([9.0, 9.0])
    d = Detour(grid, {"detour_cell": (1, 2), "detour_step": 5})
    cell = grid.cell_xy((1, 2))
    far = cell + [3.0, 0.0]
    assert d.aim(0, far, goal) is goal and d.aim(4, far, goal) is goal  # not begun yet
    np.testing.assert_array_equal(d.aim(5, far, goal), cell)
    np.testing.assert_array_equal(d.aim(50, far, goal), cell)  # persists until reached
    assert d.aim(51, cell + [DETOUR_REACHED_M * 0.9, 0.0], goal) is goal and d.done
    assert d.aim(52, far, goal) is goal  # over for good
    none = Detour(grid, {"detour_cell": None, "detour_step": None})
    assert none.done and none.aim(100, far, goal) is goal


def test_detour_draws_never_pick_the_goal_cell_and_follow_p():
    from offbench.recipes.antmaze import DETOUR_LATEST_START, Perturbations

    free = [(1, 1), (1, 2), (1, 3)]
    rng = np.random.default_rng(0)
    draws = [Perturbations(detour_p=0.3).draw(rng, free, (1, 3)) for _ in range(2000)]
    with_detour = [d for d in draws if d["detour_cell"] is not None]
    assert 0.27 < len(with_detour) / len(draws) < 0.33
    assert {d["detour_cell"] for d in with_detour} == {(1, 1), (1, 2)}
    assert all(0 <= d["detour_step"] <= DETOUR_LATEST_START for d in with_detour)
    assert Perturbations(detour_p=0.0).draw(rng, free, (1, 3))["detour_cell"] is None


def test_recipe_v3_marks_a_v2_build_stale():
    from offbench.recipes.antmaze import VERSION
    from offbench.recipes.recipes import get_recipe, stale_reason

    assert VERSION == 3 and get_recipe("antmaze-umaze-v2").version == 3
    meta = {"rebuilt": True, "recipe_version": 2}
    why = stale_reason("antmaze-umaze-v2", meta)
    assert "version 2" in why and "version 3" in why and "--overwrite" in why
    assert stale_reason("antmaze-umaze-v2", {**meta, "recipe_version": 3}) == ""
