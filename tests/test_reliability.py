"""Nothing lost, nothing half-true (issue 15): run identity, seeds added not replaced, the run lock, atomic
checkpoints, bad input refused before anything is written, strict-JSON records, and kill -9 at every stage
of a run followed by --resume giving the same final records as an uninterrupted run."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import (
    assert_same_records,
    offbench,
    private_env,
    run_options,
    strict_load,
    tiny_overrides,
)

from offbench.cli import main
from offbench.envs import quiet_mujoco
from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.records.lock import RunLock
from offbench.training import run as run_module
from offbench.training.prepare import prepare

_opts = run_options


def _quiet(_):
    pass


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _tiny_run(data, results, *sets, steps=20, options=()):
    """``offbench run`` (in-process) of IQL on ``data``: ``steps`` steps, one 1-episode evaluation every 20,
    2 x 32 networks and the other ``sets`` in one ``--set``, ``options`` (more flags), into ``results``."""
    return _cli(
        "run", "--algo", "iql", "--suite", "locomotion", "--dataset", str(data), "--steps", str(steps),
        "--eval-every", "20", "--eval-episodes", "1", "--set", "hidden_dims=[32,32]", *sets, *options,
        "--results", str(results), "--no-progress", "--no-fetch",
    )  # fmt: skip


def _one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------------
# Run identity


def test_seeds_are_added_and_variants_coexist(hopper_file, tmp_path):
    results = tmp_path / "r"
    first = run_module.run(_opts(hopper_file, results), say=_quiet)
    d = Path(first[0]["run_dir"])
    before = {s: (d / f"seed_{s}.json").read_bytes() for s in (0, 1)}
    more = run_module.run(_opts(hopper_file, results, seed=2), say=_quiet)
    assert Path(more[0]["run_dir"]) == d and [r["seed"] for r in more] == [2, 3]
    assert sorted(p.name for p in d.glob("seed_*.json")) == [f"seed_{s}.json" for s in range(4)]
    assert {s: (d / f"seed_{s}.json").read_bytes() for s in (0, 1)} == before  # earlier seeds untouched
    assert {p.name for p in d.glob("checkpoint-*")} == {"checkpoint-seeds0-1", "checkpoint-seeds2-3"}
    # the same seeds again: skipped, nothing rewritten
    again = run_module.run(_opts(hopper_file, results), say=_quiet)
    assert [r["final_score"] for r in again] == [r["final_score"] for r in first]
    assert {s: (d / f"seed_{s}.json").read_bytes() for s in (0, 1)} == before
    # a variant (another expectile) gets its own directory; both stay
    ablation = run_module.run(
        _opts(hopper_file, results, seeds=1, overrides=tiny_overrides(log_every=20, expectile=0.8)), say=_quiet
    )
    assert ablation[0]["variant"] == "batch_size=64__expectile=0.8__hidden_dims=32x32__log_every=20__steps=40"
    assert Path(ablation[0]["run_dir"]) != d and (d / "seed_0.json").read_bytes() == before[0]
    named = run_module.run(_opts(hopper_file, results, seeds=1, name="mine"), say=_quiet)
    assert Path(named[0]["run_dir"]).name == "mine" and named[0]["variant"] == "mine"
    with pytest.raises(OffbenchError, match="--name"):
        run_module.run(_opts(hopper_file, results, name="../x"), say=_quiet)


def test_unfinished_seeds_are_refused_unless_resume_or_overwrite(hopper_file, tmp_path):
    results = tmp_path / "r"
    recs = run_module.run(_opts(hopper_file, results, seeds=1), say=_quiet)
    d = Path(recs[0]["run_dir"])
    rec = json.loads((d / "seed_0.json").read_text())
    (d / "seed_0.json").write_text(json.dumps(dict(rec, status="running")))  # as a killed run leaves it
    with pytest.raises(OffbenchError, match=r"seeds 0 \(running\) already have records.*--overwrite"):
        run_module.run(_opts(hopper_file, results, seeds=1), say=_quiet)
    again = run_module.run(_opts(hopper_file, results, seeds=1, overwrite=True), say=_quiet)
    assert again[0]["status"] == "finished" and again[0]["curve"] == recs[0]["curve"]


def test_a_plain_run_takes_the_run_directorys_lock(hopper_file, tmp_path):
    prep = prepare(_opts(hopper_file, tmp_path / "r"), say=_quiet)
    lock = RunLock(prep.directory)
    assert lock.acquire(tries=1)
    try:
        with pytest.raises(OffbenchError, match="another offbench process is writing"):
            run_module.run(_opts(hopper_file, tmp_path / "r"), say=_quiet)
    finally:
        lock.release()
    assert not list(prep.directory.glob("seed_*.json"))


# --------------------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_is_one_unit_and_checked_on_load(tmp_path):
    import jax.numpy as jnp

    root = tmp_path / "ck"
    tree = {"a": jnp.arange(3, dtype=jnp.float32), "b": {"c": jnp.zeros((2, 2), jnp.int32)}}
    checkpoint.save(root, tree, {"step": 1})
    checkpoint.save(root, {"a": tree["a"] + 1, "b": tree["b"]}, {"step": 2})
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "unit-000002"]  # older units go
    got, info = checkpoint.load(root, tree)
    assert info["step"] == 2 and np.asarray(got["a"]).tolist() == [1, 2, 3]
    with pytest.raises(OffbenchError, match="another state structure"):
        checkpoint.load(root, {"a": tree["a"], "x": tree["b"]})
    with pytest.raises(OffbenchError, match=r"array 0 is float32\[3\] where this run has float32\[4\]"):
        checkpoint.load(root, {"a": jnp.zeros(4), "b": tree["b"]})
    with pytest.raises(OffbenchError, match=r"array 1 is int32\[2, 2\] where this run has float32\[2, 2\]"):
        checkpoint.load(root, {"a": tree["a"], "b": {"c": jnp.zeros((2, 2))}})
    (root / "unit-000002" / "state.npz").write_bytes(b"")  # a zero-byte state file
    with pytest.raises(OffbenchError, match="unit-000002 is damaged"):
        checkpoint.load(root, tree)


def test_damaged_checkpoint_on_resume_is_one_line(hopper_file, tmp_path):
    recs = run_module.run(_opts(hopper_file, tmp_path / "r", seeds=1, name="v"), say=_quiet)
    d = Path(recs[0]["run_dir"])
    (unit,) = (d / "checkpoint-seeds0-0").glob("unit-*")
    data = (unit / "state.npz").read_bytes()
    (unit / "state.npz").write_bytes(data[: len(data) // 2])  # truncated
    (d / "seed_0.json").write_text(json.dumps(dict(recs[0], status="running")))
    res = _tiny_run(
        hopper_file, str(tmp_path / "r"), "batch_size=64", "log_every=20", steps=40, options=("--name", "v", "--resume")
    )
    _one_line_error(res, "is damaged", "checkpoint-seeds0-0")


# --------------------------------------------------------------------------------------------------
# Bad input: one line, nothing written


def _copy_with(src, dst, **changes):
    with h5py.File(src) as f:
        arrays = {k: f[k][()] for k in f.keys()}
    for k, fn in changes.items():
        arrays[k] = fn(arrays[k])
    with h5py.File(dst, "w") as f:
        for k, v in arrays.items():
            f[k] = v
    return str(dst)


def _nan_at(row, col=None):
    def f(x):
        x = np.array(x, np.float32)
        if col is None:
            x[row] = np.nan
        else:
            x[row, col] = np.inf
        return x

    return f


@pytest.mark.parametrize(
    "changes, args, needles",
    [
        ({"rewards": _nan_at(17)}, [], ["field 'rewards'", "non-finite value (nan) at row 17"]),
        ({"observations": _nan_at(5, 2)}, [], ["field 'observations'", "(inf) at row 5"]),
        (
            {"actions": lambda a: np.where(np.arange(len(a))[:, None] == 9, 5.0, a)},
            [],
            ["field 'actions' is outside the action space", "at row 9", "5 not in [-1, 1]"],
        ),
        (
            {"observations": lambda o: o[:, :10]},
            [],
            ["field 'observations' has 10 dimensions", "D4RL-Hopper-v2 gives 11"],
        ),
        ({}, ["--eval-episodes", "0"], ["--eval-episodes must be at least 1"]),
        ({}, ["--steps", "0"], ["--steps must be at least 1"]),
        ({}, ["--set", "batch_size=0"], ["'batch_size' must be in [1, inf) (got 0)"]),
        ({}, ["--set", "expectile=1.5", "discount=0.9"], ["'expectile' must be in (0, 1) (got 1.5)"]),
        ({}, ["--set", "discount=1.5"], ["'discount' must be in (0, 1) (got 1.5)"]),
        ({}, ["--set", "actor_lr=0"], ["'actor_lr' must be in (0, inf)"]),
        (
            {"observations": lambda o: o[:, :, None]},
            [],
            ["field 'observations' has shape (599, 11, 1)", "(N, obs_dim)"],
        ),
        ({}, ["--set", "hidden_dims=foo"], ["'hidden_dims' must be a list of positive layer sizes"]),
        ({}, ["--set", "ref_min_score=abc"], ["ref_min_score"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(hopper_file, tmp_path, changes, args, needles):
    data = _copy_with(hopper_file, tmp_path / "hopper-random-v2.hdf5", **changes) if changes else hopper_file
    res = _tiny_run(data, str(tmp_path / "r"), options=args)
    line = _one_line_error(res, *needles)
    if changes:
        assert "hopper-random-v2.hdf5" in line  # names the file
    assert not (tmp_path / "r").exists()  # nothing written


def test_unwritable_or_full_results_folder_is_one_line(hopper_file, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = _tiny_run(hopper_file, blocker / "results")
    _one_line_error(res, "cannot write", str(blocker))

    import offbench.records.jsonio as jsonio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonio.os, "fsync", full)
    res = _tiny_run(hopper_file, tmp_path / "r")
    _one_line_error(res, "cannot write", "the disk is full")
    assert not list((tmp_path / "r").glob("**/seed_*.json")) and not list((tmp_path / "r").glob("**/.*.tmp"))


# --------------------------------------------------------------------------------------------------
# --set forms, divergence, strict JSON


def test_readme_set_forms(hopper_file, tmp_path):
    res = _cli("config", "iql", "--suite", "locomotion", "--set", "expectile=0.8", "--set", "hidden_dims=[512,512]")
    assert res.exit_code == 0, res.output
    assert "expectile:" in res.output and "0.8" in res.output and "[512, 512]" in res.output
    # README: "--set ref_min_score=… ref_max_score=… env_id=…" (one --set, several keys), on a file not named
    # after a suite's dataset
    data = _copy_with(hopper_file, tmp_path / "mydata.hdf5")
    res = _tiny_run(
        data,
        str(tmp_path / "r"),
        "batch_size=64",
        options=("--set", "ref_min_score=-20", "ref_max_score=3000", "env_id=Hopper-v5"),
    )
    assert res.exit_code == 0, res.output
    (path,) = (tmp_path / "r").glob("locomotion/mydata/iql/*/seed_0.json")
    rec = strict_load(path)
    assert rec["reference"] == {"min": -20.0, "max": 3000.0, "source": "--set"}
    assert rec["env"]["env_id"] == "Hopper-v5" and rec["config"]["batch_size"] == 64


def test_divergence_is_named_and_records_are_strict_json(hopper_file, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    results = tmp_path / "r"
    res = _tiny_run(
        hopper_file,
        str(results),
        "batch_size=64",
        "critic_lr=1e12",
        "value_lr=1e12",
        "actor_lr=1e12",
        steps=40,
        options=("--seeds", "2", "--eval-workers", "0"),
    )
    assert res.exit_code == 0, res.output
    assert "DIVERGED: seeds [0, 1]" in res.output
    # NaN actions make MuJoCo warn: its warnings do not land in the working folder (in-process evaluation)
    assert not (work / "MUJOCO_LOG.TXT").exists()
    paths = sorted(results.glob("locomotion/hopper-random-v2/iql/*/seed_*.json"))
    assert len(paths) == 2
    for p in paths:
        rec = strict_load(p)  # no NaN / Infinity anywhere
        assert rec["diverged"] is True and rec["final_score"] is None and "diverged" in rec["final_score_reason"]
    st = _cli("status", "--results", str(results))
    assert st.exit_code == 0 and "diverged" in st.output.splitlines()[1] and "seeds [0, 1] diverged" in st.output
    from offbench.records.record import is_finished

    assert not is_finished(strict_load(paths[0]))


def test_no_mujoco_log_in_the_working_folder(tmp_path, monkeypatch):
    import mujoco

    monkeypatch.chdir(tmp_path)
    quiet_mujoco()
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><freejoint/><geom size='1'/></body></worldbody></mujoco>"
    )
    d = mujoco.MjData(model)
    d.qacc_warmstart[:] = np.nan  # a bad state: MuJoCo warns (and would write MUJOCO_LOG.TXT here)
    d.qpos[:] = np.nan
    with pytest.warns(RuntimeWarning, match="MuJoCo"):
        mujoco.mj_step(model, d)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


@pytest.mark.parametrize("env_id", ["AntMaze_UMaze-v4", "PointMaze_UMaze-v3"])
def test_maze_environments_leave_no_file_in_the_temp_folder(tmp_path, monkeypatch, env_id):
    """Gymnasium-Robotics writes each maze's model to <tempdir>/ant_maze<time>.xml and never deletes it
    (offbench.envs.drop_maze_xml removes it once the model is loaded); the environment still runs after."""
    import tempfile

    from offbench.envs import EnvFactory, make_env, make_env_from_spec

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # recomputed from TMPDIR
    assert tempfile.gettempdir() == str(tmp)
    env = make_env(env_id, {"continuing_task": False}, 50)
    wrapped = EnvFactory(env_id=env_id, env_kwargs={"continuing_task": False}, max_episode_steps=50, goal_radius=0.5)()
    again = make_env_from_spec(env.spec.to_json())  # a Minari dataset's env spec, as evaluation makes it
    for e in (env, wrapped, again):
        e.reset(seed=0)
        e.step(e.action_space.sample())
        e.reset(seed=1)
        e.close()
    assert list(tmp.iterdir()) == []


def test_writing_a_maze_dataset_leaves_no_file_in_the_temp_folder(tmp_path, monkeypatch):
    """Minari's ``create_dataset_from_buffers`` makes the eval env from its spec when reference scores are given
    (``gym.make(eval_env_spec)``) and keeps its maze model file; offbench's writer runs it in a private temp folder."""
    import tempfile

    from offbench.envs import make_env
    from offbench.recipes.writer import write_minari

    tmp, store = tmp_path / "tmp", tmp_path / "minari"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store))
    monkeypatch.setattr(tempfile, "tempdir", None)
    env = make_env("PointMaze_UMaze-v3", {"continuing_task": False}, 50)
    obs, _ = env.reset(seed=0)
    rows = [obs]
    for _ in range(5):
        rows.append(env.step(env.action_space.sample())[0])
    episode = {
        "observations": {k: np.stack([o[k] for o in rows]) for k in obs},
        "actions": np.zeros((5, 2), np.float32),
        "rewards": np.zeros(5),
        "terminations": np.zeros(5, bool),
        "truncations": np.r_[np.zeros(4, bool), True],
    }
    assert list(tmp.iterdir()) == []
    write_minari("rebuilt/maze-probe-v0", [episode], env.spec, env.spec, ref_min_score=0.0, ref_max_score=1.0)
    env.close()
    assert list(tmp.iterdir()) == []
    assert tempfile.gettempdir() == str(tmp)  # the writer gave the temp folder back


# --------------------------------------------------------------------------------------------------
# kill -9 at every stage, then --resume: the same final records as an uninterrupted run

_SAME = ("curve", "metrics", "final_score", "step", "diverged")


def _cli_run(data, results, env, resume=False):
    args = [
        "run",
        "--algo",
        "iql",
        "--suite",
        "locomotion",
        "--dataset",
        data,
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--eval-episodes",
        "1",
        "--seeds",
        "2",
        "--set",
        "hidden_dims=[32,32]",
        "batch_size=64",
        "log_every=10",
        "--results",
        str(results),
        "--no-progress",
        "--no-fetch",
    ] + (["--resume"] if resume else [])
    return offbench(args, env, timeout=400)


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory, hopper_file):
    root = tmp_path_factory.mktemp("faults")
    data = shutil.copy(hopper_file, root / "hopper-random-v2.hdf5")  # the session's data
    env = private_env(root)
    ref = _cli_run(data, root / "reference", env)
    assert ref.returncode == 0, ref.stderr[-2000:]
    recs = {p.name: strict_load(p) for p in (root / "reference").glob("**/seed_*.json")}
    logs = {p.name: p.read_text() for p in (root / "reference").glob("**/seed_*.metrics.csv")}
    return {"root": root, "data": data, "env": env, "reference": recs, "logs": logs}


@pytest.mark.parametrize("fault", ["compile:1", "train:3", "evaluate:2", "checkpoint-written:2"])
def test_kill_9_then_resume_gives_identical_records(fault_env, fault):
    results = fault_env["root"] / fault.replace(":", "_")
    killed = _cli_run(fault_env["data"], results, dict(fault_env["env"], OFFBENCH_FAULT=fault))
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = [strict_load(p) for p in results.glob("**/seed_*.json")]
    assert left and all(r["status"] == "running" and "final_score" not in r for r in left)  # nothing looks finished
    resumed = _cli_run(fault_env["data"], results, fault_env["env"], resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = {p.name: strict_load(p) for p in results.glob("**/seed_*.json")}
    assert set(got) == {"seed_0.json", "seed_1.json"}
    assert_same_records(got, fault_env["reference"], _SAME, context=(fault,))
    # the training logs too: rows written after the last checkpoint were dropped on resume, none duplicated
    assert {p.name: p.read_text() for p in results.glob("**/seed_*.metrics.csv")} == fault_env["logs"], fault
    assert sorted(fault_env["logs"]) == ["seed_0.metrics.csv", "seed_1.metrics.csv"]
    if fault.startswith("checkpoint-written"):  # the write interrupted before its commit was not used
        assert "resumed from step 20" in resumed.stderr
