"""The datasets Minari hosts (replicas made with Minari's own API, tests/minari_replicas.py): each loads, is
evaluated on the task its data poses, and runs by its id alone; failed downloads say why; one dataset identity
whatever its name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import minari
import minari_replicas as replicas
import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.config import resolve as resolve_config
from offbench.data import fetch, hosted
from offbench.data.naming import canonical_name, suite_of
from offbench.data.sources import resolve
from offbench.data.suites import get_suite
from offbench.data.tasks import maze_cell_xy
from offbench.errors import OffbenchError


@pytest.fixture(scope="session")
def replica_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari_replicas")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        for build in replicas.BUILDERS.values():
            build()
    return root


@pytest.fixture
def hosted_data(replica_root, monkeypatch):
    """The replicas in this test's private Minari folder (conftest's isolated_data), as downloaded ones are."""
    import os

    dest = Path(os.environ["MINARI_DATASETS_PATH"])
    shutil.copytree(replica_root, dest, dirs_exist_ok=True)
    return dest


def _source(dataset_id, config=None):
    return resolve(suite_of(dataset_id), dataset_id, config or {})


def _cell(maze_map, xy, scaling):
    return hosted.cell_of(maze_map, xy, scaling)


def test_replicas_have_the_hosted_format(hosted_data):
    ant = minari.load_dataset("D4RL/antmaze/umaze-v1")
    ep = next(ant.iterate_episodes())
    assert set(ep.observations) == {"observation", "achieved_goal", "desired_goal"}
    assert set(ep.infos) == {"success", "qpos", "qvel", "goal"}
    eval_map = json.loads(ant.storage.metadata["eval_env_spec"])["kwargs"]["maze_map"]
    assert eval_map == replicas.ANTMAZE_EVAL_UMAZE != json.loads(ant.storage.metadata["env_spec"])["kwargs"]["maze_map"]
    point = minari.load_dataset("D4RL/pointmaze/umaze-v2")
    goals = {tuple(np.round(e.observations["desired_goal"][-1], 1)) for e in point.iterate_episodes()}
    assert len(goals) >= 3  # a new goal per episode (Minari #265)
    assert "eval_env_spec" not in minari.load_dataset("mujoco/hopper/medium-v0").storage.metadata  # eval_env=None


def test_antmaze_umaze_is_evaluated_in_the_data_maze_from_its_start_to_its_goal(hosted_data):
    src = _source("D4RL/antmaze/umaze-v1")
    goals = src.dataset.goals
    maze = src.env_kwargs["maze_map"]
    data_start = {_cell(maze, p, 4.0) for p in goals["start"]}
    data_goal = {_cell(maze, p, 4.0) for p in goals["desired"]}
    assert data_start == {(3, 1)} and data_goal == {(1, 1)}  # the collection map: R at row 3, G at row 1
    assert (
        maze[3][1] == "r" and maze[1][1] == "g" and hosted.walls(maze) == hosted.walls(replicas.ANTMAZE_COLLECT_UMAZE)
    )
    assert "#301/#304" in src.env_note and src.eval_env_spec is None
    env = src.env_factory()()
    try:
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            assert _cell(maze, obs["achieved_goal"], 4.0) == (3, 1) and _cell(maze, obs["desired_goal"], 4.0) == (1, 1)
        assert len(np.concatenate([obs["achieved_goal"], obs["observation"]])) == src.dataset.obs_dim == 29
    finally:
        env.close()
    from offbench import envs  # the hosted eval_env_spec starts in another corner of another maze

    spec_env = envs.make_env_from_spec(src.dataset.metadata["eval_env_spec"])
    obs, _ = spec_env.reset(seed=0)
    assert _cell(maze, obs["achieved_goal"], 4.0) == (1, 3)
    spec_env.close()


def test_pointmaze_rewards_are_relabelled_to_the_evaluation_goal(hosted_data):
    raw = minari.load_dataset("D4RL/pointmaze/umaze-v2")
    raw_rewarded = np.concatenate(
        [e.observations["achieved_goal"][1:][e.rewards > 0] for e in raw.iterate_episodes()], axis=0
    )
    src = _source("D4RL/pointmaze/umaze-v2")
    goal_xy = maze_cell_xy(src.env_kwargs["maze_map"], (1, 1), 1.0)
    assert src.env_kwargs["maze_map"][1][1] == "g" and src.task.name == "maze2d-umaze-v1" and src.dataset.obs_dim == 4
    dist = np.linalg.norm(src.dataset.goals["achieved"] - goal_xy, axis=1)
    assert np.array_equal(src.dataset.rewards, (dist <= 0.5).astype(np.float32))
    assert src.dataset.rewards.sum() > 0 and "relabelled" in src.env_note
    assert (np.linalg.norm(raw_rewarded - goal_xy, axis=1) > 1.0).any()  # the hosted rewards were for other goals
    from offbench.evaluation.episodes import env_factory_for

    env = env_factory_for(src)()  # D4RL's fixed goal (no per-reset noise) and 0.5 m reward
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(obs["desired_goal"], goal_xy) and np.array_equal(env.unwrapped.goal, goal_xy)
    env.close()


@pytest.mark.parametrize(
    "dataset, steps, differs",
    [("D4RL/kitchen/mixed-v2", 280, "remove_task_when_completed False"), ("D4RL/door/human-v2", 200, "300")],
)
def test_kitchen_and_adroit_are_evaluated_in_the_suites_env_and_say_how_the_hosted_spec_differs(
    hosted_data, dataset, steps, differs
):
    src = _source(dataset)
    assert src.eval_env_spec is None and src.max_episode_steps == steps and src.env_id == src.task.env_id
    assert differs in src.env_note and "max_episode_steps" in src.env_note
    if "kitchen" in dataset:  # the hosted data's own 59-d observation, velocities included (not the rebuilt view)
        assert src.kind == "original" and src.obs_keys == ("observation",) and src.dataset.obs_dim == 59
    env = src.env_factory()()
    assert env.spec.max_episode_steps == steps
    env.close()


def test_gymnasium_029_spec_json_loads_as_minari_loads_it(hosted_data):
    meta_path = hosted_data / "mujoco" / "hopper" / "medium-v0" / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    spec = json.loads(meta["env_spec"])
    order = ["id", "entry_point", "reward_threshold", "nondeterministic", "max_episode_steps", "order_enforce"]
    order += ["autoreset", "disable_env_checker", "apply_api_compatibility", "kwargs", "additional_wrappers"]
    spec.update(order_enforce=True, autoreset=False, apply_api_compatibility=False)  # gymnasium 0.29's EnvSpec
    meta["env_spec"] = json.dumps({k: spec[k] for k in [*order, "vector_entry_point"]})  # 0.29's key order
    meta_path.write_text(json.dumps(meta))
    assert minari.load_dataset("mujoco/hopper/medium-v0").env_spec.id == "Hopper-v5"  # Minari loads it
    src = _source("mujoco/hopper/medium-v0")
    env = src.env_factory()()
    assert env.observation_space.shape == (11,)
    env.close()


def test_mujoco_suite_lists_minari_ids_with_the_dataset_references_and_env_spec(hosted_data):
    suite = get_suite("mujoco")
    ids = {t.minari_id for t in suite.tasks}
    assert {"mujoco/hopper/medium-v0", "mujoco/walker2d/simple-v0", "mujoco/pusher/expert-v0"} <= ids
    src = _source("mujoco/hopper/medium-v0")
    assert suite_of("mujoco/hopper/medium-v0").name == "mujoco"
    assert (src.ref_min, src.ref_max, src.env_id) == (-19.5, 3100.0, "Hopper-v5")
    assert "env_spec" in src.env_note and src.eval_env_spec  # no eval_env_spec: the env_spec, as Minari
    meta_path = hosted_data / "mujoco" / "hopper" / "medium-v0" / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["ref_min_score"], meta["ref_max_score"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(OffbenchError, match="no reference returns"):
        _source("mujoco/hopper/medium-v0")


def test_a_users_own_minari_dataset_runs_in_a_suite_of_its_own(monkeypatch, tmp_path):
    replicas.mujoco_hopper("someone/hopper/mine-v0")
    suite = suite_of("someone/hopper/mine-v0")
    assert suite.name == "minari:someone__hopper__mine-v0" and get_suite(suite.name).name == suite.name
    src = resolve(suite, "someone/hopper/mine-v0", {})
    assert src.env_id == "Hopper-v5" and src.ref_source.startswith("dataset metadata")


def test_one_identity_whatever_the_name():
    names = ["hopper-medium-v2", "rebuilt/hopper-medium-v2", "/data/hopper-medium-v2.hdf5"]
    assert {canonical_name(n) for n in names} == {"hopper-medium-v2"}
    assert canonical_name("D4RL/door/human-v2") == "door-human-v1"
    assert canonical_name("D4RL/antmaze/umaze-v1") == "antmaze-umaze-v2"
    from offbench import registry

    cql = registry.get("cql")
    for n in names:  # CQL's datasets: layer (configs/cql.yaml) fires for every name of the data
        assert resolve_config(cql.default_config, "cql", "locomotion", canonical_name(n))["reward_transform"] == (
            "locomotion"
        )
    assert resolve_config(cql.default_config, "cql", "locomotion", "hopper-random-v2")["reward_transform"] != (
        "locomotion"
    )
    for algo in ("cql", "iql"):  # Minari's MuJoCo suite takes each algorithm's locomotion settings
        a = registry.get(algo)
        assert resolve_config(a.default_config, algo, "mujoco") == resolve_config(a.default_config, algo, "locomotion")


class _HTTPError(OSError):
    def __init__(self, status):
        super().__init__(f"{status} Server Error")
        self.response = type("Response", (), {"status_code": status})()


@pytest.mark.parametrize(
    "exc, says",
    [
        (ImportError("huggingface_hub is not installed"), "pip install 'minari[hf]'"),
        (ValueError("Couldn't find any version for dataset D4RL/door/humen in the remote"), "unknown dataset id"),
        (_HTTPError(503), "server error (HTTP 503)"),
        (_HTTPError(404), "unknown dataset id"),
        (ConnectionError("Name or service not known"), "no network"),
        (type("ConnectError", (Exception,), {})("[Errno -2] Name or service not known"), "no network"),  # httpx
    ],
)
def test_a_failed_download_says_why_in_one_line(monkeypatch, exc, says):
    def fail(dataset_id):
        raise exc

    monkeypatch.setattr(minari, "download_dataset", fail)
    with pytest.raises(OffbenchError) as info:
        fetch.download_minari("D4RL/door/human-v2")
    assert says in str(info.value) and "\n" not in str(info.value)


RUN = ["--steps", "10", "--eval-every", "10", "--eval-episodes", "1", "--no-progress", "--set", "hidden_dims=[16]"]


def test_the_fallback_to_a_rebuild_is_shown_and_refusable(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "unreachable", lambda url: "")  # the server answers, the download fails

    def fail(dataset_id):
        raise ImportError("huggingface_hub is not installed")

    monkeypatch.setattr(minari, "download_dataset", fail)
    built = []
    monkeypatch.setattr(fetch, "_build_all", lambda names, *a: built.extend(names))
    args = ["run", "--algo", "bc", "--dataset", "door-human-v1", "--results", str(tmp_path), *RUN]
    res = CliRunner().invoke(main, [*args, "--no-rebuild"])
    assert res.exit_code == 2 and not built
    assert "--no-rebuild refuses the rebuild" in res.output and "pip install 'minari[hf]'" in res.output
    res = CliRunner().invoke(main, ["data", "download", "D4RL/door/human-v2"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and "minari[hf]" in res.output
    said = []
    fetch.obtain(get_suite("adroit"), ["door-human-v1"], say=said.append, progress=False)
    assert built == ["door-human-v1"]
    assert any("minari[hf]" in m and "--no-rebuild refuses this" in m for m in said), said


@pytest.mark.parametrize("dataset", list(replicas.BUILDERS))
def test_a_tiny_run_on_each_hosted_dataset_by_its_id_alone(hosted_data, tmp_path, dataset):
    res = CliRunner().invoke(main, ["run", "--algo", "bc", "--dataset", dataset, "--results", str(tmp_path), *RUN])
    assert res.exit_code == 0, res.output
    (path,) = tmp_path.rglob("seed_0.json")
    rec = json.loads(path.read_text())
    src = _source(dataset)
    assert rec["status"] == "finished" and rec["suite"] == suite_of(dataset).name
    assert rec["env"]["env_id"] == src.env_id and rec["env"]["env_kwargs"] == json.loads(json.dumps(src.env_kwargs))
    assert rec["env"]["family"] == src.env_family and rec["env"]["note"] == src.env_note
    assert rec["env"]["from_dataset_spec"] == (dataset == "mujoco/hopper/medium-v0")
    if src.env_note:
        assert src.env_note in res.output


def test_per_episode_goals_and_random_starts_take_d4rls_cells_and_are_relabelled():
    """AntMaze medium/large and umaze-diverse (the env's default map, a new goal at every reset): D4RL's start
    and goal cells of the suite's map, rewards relabelled to that goal (D4RL relabel_antmaze_rewards.py)."""
    task = get_suite("antmaze").task("antmaze-medium-play-v2")
    maze = task.env_kwargs["maze_map"]
    free = [(i, j) for i, row in enumerate(maze) for j, c in enumerate(row) if c != 1]
    rng = np.random.default_rng(0)
    pts = [np.asarray(maze_cell_xy(maze, free[k])) for k in rng.integers(len(free), size=60)]
    goals = {"start": np.array(pts[:20]), "desired": np.array(pts[20:]), "achieved": np.array(pts[20:])}
    eval_map = [[{"r": "r", "g": "g"}.get(c, c) for c in row] for row in maze]  # Minari's EVAL_ENV_MAPS["medium"]
    meta = {"eval_env_spec": json.dumps({"id": "AntMaze_Medium-v4", "kwargs": {"maze_map": eval_map}})}
    m = hosted.maze_task(task, goals, meta)
    assert (m.start_cell, m.goal_cell, m.relabel) == ((1, 1), (6, 6), True)
    assert m.goal_xy == maze_cell_xy(maze, (6, 6)) and "relabelled" in m.note and "#301" not in m.note
    assert hosted.relabel(np.zeros(2), np.array([m.goal_xy, (0.0, 0.0)]), m.goal_xy).tolist() == [1.0, 0.0]
