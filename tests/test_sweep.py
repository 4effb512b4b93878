"""`offbench sweep` / `offbench status` (issue 9): planning, locks, the local launcher with a killed and
restarted sweep, a Ray sweep (real local Ray runtime) with a job that keeps failing, and `offbench report`
on the sweep's folder. Jobs are real `offbench run` processes on a tiny Hopper dataset with tiny networks."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from conftest import kill_when, offbench, private_env, write_hopper_hdf5

from offbench.errors import OffbenchError

TINY = [
    "--seeds",
    "2",
    "--steps",
    "20",
    "--eval-every",
    "20",
    "--eval-episodes",
    "1",
    "--set",
    "hidden_dims=[32,32]",
    "--set",
    "batch_size=64",
]


@pytest.fixture(scope="module")
def sweep_env(tmp_path_factory, hopper_file):
    """The session's tiny D4RL-format dataset (a copy; the same shapes as the other tiny runs, whose compiled
    programs conftest's opt-in compilation cache shares) and an environment whose data folders are private."""
    root = tmp_path_factory.mktemp("sweep")
    data = shutil.copy(hopper_file, root / "hopper-random-v2.hdf5")
    return {"root": root, "data": str(data), "env": private_env(root)}


def read(path):
    with open(path) as f:
        return json.load(f)


def finished(run_dir: Path, seeds=(0, 1)) -> bool:
    try:
        return all(read(run_dir / f"seed_{s}.json")["status"] == "finished" for s in seeds)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------
# Planning and locks (no training)


def test_plan_yaml_and_bad_input(tmp_path):
    from offbench.sweeps.spec import load_spec_file, make_spec
    from offbench.sweeps.sweep import plan

    data = write_hopper_hdf5(tmp_path / "hopper-random-v2.hdf5", steps=60)
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "algos": ["iql", "bc"],
                "suites": "locomotion",
                "datasets": [str(data)],
                "seeds": 3,
                "steps": 10,
                "set": {"hidden_dims": [8, 8]},
                "max-parallel": 2,
                "results": str(tmp_path / "res"),
            }
        )
    )
    spec = make_spec(load_spec_file(f), {"steps": 7, "set": ["iql:expectile=0.8", "hidden_dims=[4,4]"]})
    assert spec.steps == 7 and spec.seeds == 3 and spec.max_parallel == 2  # flags win over the file
    jobs = plan(spec, "t")
    assert [j.key for j in jobs] == [
        "locomotion/hopper-random-v2/iql/expectile=0.8__hidden_dims=4x4__steps=7",
        "locomotion/hopper-random-v2/bc/hidden_dims=4x4__steps=7",
    ]
    iql, bc = jobs
    # --set adds to the file's set (the last value of a key wins, in the plan as in `offbench run`)
    assert iql.overrides == ("hidden_dims=[8, 8]", "expectile=0.8", "hidden_dims=[4,4]")
    assert bc.overrides == ("hidden_dims=[8, 8]", "hidden_dims=[4,4]")
    assert iql.variant == "expectile=0.8__hidden_dims=4x4__steps=7" and bc.variant == "hidden_dims=4x4__steps=7"
    assert iql.run_dir == str((tmp_path / "res" / "locomotion" / "hopper-random-v2" / "iql" / iql.variant).resolve())
    assert iql.seed_list == [0, 1, 2] and iql.config_hash != bc.config_hash
    assert "--resume" in iql.command(True) and "--resume" not in iql.command(False)
    assert iql.command(False)[iql.command(False).index("--name") + 1] == iql.variant
    # the plan agrees with what `offbench run` resolves for the job's command: config, variant, directory
    from offbench.config import config_hash, parse_overrides
    from offbench.training.prepare import RunOptions, prepare

    prep = prepare(
        RunOptions(
            algo="iql",
            suite="locomotion",
            dataset=iql.dataset,
            seeds=3,
            steps=7,
            overrides=parse_overrides(iql.overrides),
            results=iql.results,
        ),
        say=lambda m: None,
    )
    assert config_hash(prep.config) == iql.config_hash and prep.config["expectile"] == 0.8
    assert prep.variant == iql.variant and str(prep.directory) == iql.run_dir

    with pytest.raises(OffbenchError, match="unknown algorithm"):
        plan(make_spec({}, {"algos": "iql,nope", "suites": "locomotion", "datasets": str(data)}), "t")
    with pytest.raises(OffbenchError, match="unknown config key 'nope'"):
        plan(make_spec({}, {"algos": "iql", "suites": "locomotion", "datasets": str(data), "set": ["nope=1"]}), "t")
    with pytest.raises(OffbenchError, match="not one of the sweep's algorithms"):
        plan(make_spec({}, {"algos": "iql", "suites": "locomotion", "datasets": str(data), "set": ["bc:x=1"]}), "t")
    with pytest.raises(OffbenchError, match="belongs to none of the suites"):
        plan(make_spec({}, {"algos": "iql", "suites": "locomotion", "datasets": "antmaze-umaze-v2"}), "t")
    with pytest.raises(OffbenchError, match="no dataset of the chosen suites is available"):
        plan(make_spec({}, {"algos": "iql", "suites": "locomotion"}), "t")  # the test's data folders are empty
    f.write_text("algos: [iql]\nsuites: [locomotion]\nstepz: 3\n")
    with pytest.raises(OffbenchError, match="unknown key 'stepz'"):
        load_spec_file(f)
    with pytest.raises(OffbenchError, match="no algorithms"):
        make_spec({}, {"suites": "locomotion"})


def test_run_lock_is_exclusive_and_a_locked_job_is_left_alone(tmp_path):
    from offbench.records.lock import RunLock, is_locked
    from offbench.sweeps.jobs import Job, execute_job

    run_dir = tmp_path / "locomotion" / "x" / "iql"
    first = RunLock(run_dir)
    assert first.acquire(tries=1) and is_locked(run_dir)
    assert not RunLock(run_dir).acquire(tries=2, wait_s=0.01)
    job = Job(
        algo="iql",
        suite="locomotion",
        dataset=str(tmp_path / "x.hdf5"),
        name="x",
        run_dir=str(run_dir),
        results=str(tmp_path),
        config_hash="h",
        seeds=1,
        steps=1,
    )
    out = execute_job(job)  # another "sweep" holds the lock: nothing runs, nothing is written
    assert out["outcome"] == "busy" and not (run_dir / "sweep_job.json").exists()
    first.release()
    assert not is_locked(run_dir)
    second = RunLock(run_dir)
    assert second.acquire(tries=1)
    second.release()


def test_resume_only_from_a_matching_checkpoint(tmp_path):
    import numpy as np

    from offbench.records import checkpoint
    from offbench.records.store import checkpoint_dir
    from offbench.sweeps.jobs import Job, can_resume, is_done, is_finished

    run_dir = tmp_path / "r"
    job = Job(
        algo="iql",
        suite="locomotion",
        dataset="d.hdf5",
        name="d",
        run_dir=str(run_dir),
        results=str(tmp_path),
        config_hash="abc",
        seeds=2,
        steps=100,
    )
    assert not can_resume(job)  # no checkpoint
    root = checkpoint_dir(run_dir, [0, 1])
    info = {"algo": "iql", "config_hash": "abc", "seeds": [0, 1], "step": 50, "steps": 100, "online_steps": 0}
    checkpoint.save(root, {"x": np.zeros(1)}, info)
    assert can_resume(job)
    for change in ({"config_hash": "other"}, {"seeds": [0]}, {"steps": 200}, {"online_steps": 5}):
        checkpoint.save(root, {"x": np.zeros(1)}, {**info, **change})
        assert not can_resume(job), change
    checkpoint.save(root, {"x": np.zeros(1)}, info)
    import dataclasses

    assert not can_resume(dataclasses.replace(job, fresh=True))
    assert not can_resume(dataclasses.replace(job, seed=2))  # seeds 2-3 have no checkpoint of their own
    # finished = every seed a finished run (records.record.is_finished), with this job's steps and config
    from offbench.config import config_hash

    cfg = {"a": 1}
    job = dataclasses.replace(job, config_hash=config_hash(cfg))
    rec = {"status": "finished", "steps": 100, "online_steps": 0, "config": cfg, "final_score": 1.0}
    assert is_finished(job, [rec, rec]) and not is_finished(job, [rec, None])
    assert not is_finished(job, [rec, {**rec, "status": "running"}])
    assert not is_finished(job, [rec, {**rec, "steps": 50}])
    assert not is_finished(job, [rec, {**rec, "config": {"a": 2}}])
    # a run that diverged is not finished, but it is done: the sweep does not run it again
    div = {**rec, "diverged": True, "final_score": None}
    assert not is_finished(job, [rec, div]) and is_done(job, [rec, div]) and not is_done(job, [rec, None])


def test_a_finished_job_settles_a_state_file_left_running(tmp_path):
    """The sweep was killed after the job's last record but before it wrote 'done': the next sweep skips
    the finished job and corrects its state file; a state already 'done' is left untouched."""
    import dataclasses

    from offbench.config import config_hash
    from offbench.records.jsonio import write_json_atomic
    from offbench.sweeps.jobs import Job, execute_job

    run_dir = tmp_path / "locomotion" / "d" / "iql"
    cfg = {"a": 1}
    job = Job(
        algo="iql",
        suite="locomotion",
        dataset="d.hdf5",
        name="d",
        run_dir=str(run_dir),
        results=str(tmp_path),
        config_hash=config_hash(cfg),
        seeds=2,
        steps=100,
    )
    for seed in (0, 1):
        write_json_atomic(
            run_dir / f"seed_{seed}.json",
            {
                "schema": "offbench-run/1",
                "status": "finished",
                "steps": 100,
                "online_steps": 0,
                "config": cfg,
                "seed": seed,
                "final_score": 1.0,
            },
        )
    assert not (run_dir / "checkpoint-seeds0-1").exists()
    stale = {"status": "running", "attempts": [{"attempt": 1, "resume": False}], "ended_at": None}
    write_json_atomic(run_dir / "sweep_job.json", stale)
    assert execute_job(job)["outcome"] == "skipped"
    state = read(run_dir / "sweep_job.json")
    assert state["status"] == "done" and "note" in state["attempts"][-1]
    before = (run_dir / "sweep_job.json").stat().st_mtime_ns
    assert execute_job(dataclasses.replace(job))["outcome"] == "skipped"
    assert (run_dir / "sweep_job.json").stat().st_mtime_ns == before


def test_status_needs_an_existing_folder(tmp_path, sweep_env):
    r = offbench(["status", "--results", str(tmp_path / "nothing")], sweep_env["env"], timeout=60)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_status_lists_records_of_the_previous_layout(tmp_path):
    """Records written before variant directories (<suite>/<dataset>/<algo>/seed_<s>.json, no "variant") are
    listed, marked as such, beside the current layout's."""
    from click.testing import CliRunner

    from offbench.cli import main
    from offbench.records.store import write_record

    def rec(seed, score, **kw):
        return dict(status="finished", seed=seed, step=20, steps=20, final_score=score, diverged=False, **kw)

    base = tmp_path / "results" / "locomotion" / "hopper-medium-v2"
    for s in (0, 1):
        write_record(base / "iql", s, rec(s, 40.0 + s, algo="iql"))  # previous layout
        write_record(base / "iql" / "default", s, rec(s, 60.0 + s, algo="iql", variant="default"))
    write_record(base / "bc", 0, dict(rec(0, None, algo="bc"), status="running", step=10))  # previous, unfinished
    r = CliRunner().invoke(main, ["status", "--results", str(tmp_path / "results")])
    assert r.exit_code == 0, r.output
    rows = {(ln.split()[3], ln.split()[8]): ln for ln in r.output.splitlines()[1:-1]}
    assert set(rows) == {("iql", "-"), ("iql", "default"), ("bc", "-")}, r.output
    assert rows[("iql", "-")].split()[:6] == ["done", "locomotion", "hopper-medium-v2", "iql", "2/2", "20/20"]
    assert rows[("iql", "-")].split()[7] == "40.5" and "previous layout (no variant directory)" in rows[("iql", "-")]
    assert rows[("iql", "default")].split()[7:] == ["60.5", "default"]
    assert rows[("bc", "-")].split()[0] == "pending" and "; resumes" not in rows[("bc", "-")]  # it does not
    assert r.output.splitlines()[-1] == "3 runs: 2 done, 0 running, 0 failed, 1 pending"


# --------------------------------------------------------------------------------------------------
# Local launcher: 2 algorithms x 1 dataset x 2 seeds, killed after the first job and started again


@pytest.fixture(scope="module")
def local_sweep(sweep_env):
    env, results = sweep_env["env"], sweep_env["root"] / "results_local"
    tiny = TINY + ["--steps", "30", "--eval-every", "10"]  # later flags win: checkpoints at steps 10, 20, 30
    args = [
        "sweep",
        "--algos",
        "iql,bc",
        "--suites",
        "locomotion",
        "--datasets",
        sweep_env["data"],
        *tiny,
        "--launcher",
        "local",
        "--max-parallel",
        "1",
        "--progress-every",
        "2",
        "--results",
        str(results),
    ]
    base = results / "locomotion" / "hopper-random-v2"
    variant = "batch_size=64__hidden_dims=32x32__steps=30"  # the tiny config's run directory (records.store)
    first, second = base / "iql" / variant, base / "bc" / variant
    # kill -9 the sweep while the second job runs: once it has a checkpoint (step 10 or 20 of 30)
    kill_when(args, env, lambda: finished(second) or (second / "checkpoint-seeds0-1" / "LATEST").exists(), 240)
    assert finished(first), "the first job did not finish before the kill"
    second_was_finished = finished(second)
    # the job process running when the sweep died goes with it and gives the run directory's lock back
    from offbench.records.lock import is_locked

    deadline = time.time() + 30
    while is_locked(second) and time.time() < deadline:
        time.sleep(0.2)
    assert not is_locked(second), "the killed sweep's job process outlived it"
    first_records = {s: (first / f"seed_{s}.json").stat().st_mtime_ns for s in (0, 1)}
    first_state = read(first / "sweep_job.json")
    restart = offbench(args, env)
    return dict(
        results=results,
        first=first,
        second=second,
        restart=restart,
        first_records=first_records,
        first_state=first_state,
        second_was_finished=second_was_finished,
        env=env,
    )


def test_local_sweep_kill_and_restart_finishes_only_what_is_missing(local_sweep):
    s = local_sweep
    r = s["restart"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert "locomotion/hopper-random-v2/iql/batch_size=64__hidden_dims=32x32__steps=30: already finished" in r.stderr
    assert "2 jobs:" in r.stderr and "failed" not in r.stderr
    # the finished job was not redone: its records and its job state are untouched
    assert {x: (s["first"] / f"seed_{x}.json").stat().st_mtime_ns for x in (0, 1)} == s["first_records"]
    assert read(s["first"] / "sweep_job.json") == s["first_state"]
    assert finished(s["second"])
    recs = [read(s["second"] / f"seed_{x}.json") for x in (0, 1)]
    assert all(rec["algo"] == "bc" and rec["steps"] == 30 for rec in recs)
    assert [c["step"] for c in recs[0]["curve"]] == [10, 20, 30]  # one curve, whether resumed or not
    assert [rec["seed"] for rec in recs] == [0, 1] and recs[0]["seeds_in_run"] == [0, 1]  # one job, both seeds
    state = read(s["second"] / "sweep_job.json")
    assert state["status"] == "done"
    # killed mid-run (after its first checkpoint, 20 steps and two evaluations before its end): the restart
    # resumed it from that checkpoint
    assert not s["second_was_finished"], "the sweep was killed after its second job had finished"
    assert state["attempts"][-1]["returncode"] == 0
    assert "[2/2] locomotion/hopper-random-v2/bc/batch_size=64__hidden_dims=32x32__steps=30: finished" in r.stderr
    assert state["attempts"][-1]["resume"] is True
    assert "resumed from step" in (s["second"] / "sweep_job.log").read_text()
    sweeps = list((s["results"] / ".sweeps").glob("*.json"))
    assert len(sweeps) == 2 and any(read(p)["status"] == "finished" for p in sweeps)


def test_status_shows_the_sweep(local_sweep):
    r = offbench(["status", "--results", str(local_sweep["results"])], local_sweep["env"], timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines()]
    rows = {ln[3]: ln for ln in lines if len(ln) > 4 and ln[1] == "locomotion"}
    assert set(rows) == {"iql", "bc"}
    for algo, row in rows.items():
        assert row[0] == "done" and row[4] == "2/2" and row[5] == "30/30"
        d = local_sweep["results"] / "locomotion" / "hopper-random-v2" / algo / row[8]
        rec, rec1 = read(d / "seed_0.json"), read(d / "seed_1.json")
        assert float(row[7]) == pytest.approx((rec["final_score"] + rec1["final_score"]) / 2, abs=0.051)
    assert "2 runs: 2 done, 0 running, 0 failed, 0 pending" in r.stdout


def test_report_reads_the_sweep_folder(local_sweep, tmp_path):
    r = offbench(
        [
            "report",
            "--results",
            str(local_sweep["results"]),
            "--out",
            str(tmp_path / "rep"),
            "--format",
            "md",
            "--reps",
            "50",
        ],
        local_sweep["env"],
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = "\n".join(p.read_text() for p in (tmp_path / "rep").rglob("*.md"))
    assert "hopper-random-v2" in text and "iql" in text and "bc" in text


# --------------------------------------------------------------------------------------------------
# Ray launcher (a real local Ray runtime), sweep described in YAML, one job that keeps failing


def test_ray_sweep_with_a_failing_job(sweep_env, tmp_path):
    results = tmp_path / "results_ray"
    # bc's job raises at run time (its evaluation environment does not exist), on every attempt
    spec = {
        "algos": ["iql", "bc"],
        "suites": ["locomotion"],
        "datasets": [sweep_env["data"]],
        "seeds": 2,
        "steps": 20,
        "eval_every": 20,
        "eval_episodes": 1,
        "set": ["hidden_dims=[32,32]", "batch_size=64", "bc:env_id=NoSuchEnv-v0"],
        "launcher": "ray",
        "max_parallel": 2,
        "cpus_per_run": 1,
        "retries": 1,
        "results": str(results),
    }
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(spec))
    r = offbench(["sweep", str(f)], sweep_env["env"], timeout=400)
    assert r.returncode == 1, r.stderr[-3000:]  # a failed job makes the sweep's exit status 1 ...
    base = results / "locomotion" / "hopper-random-v2"
    iql_dir = base / "iql" / "batch_size=64__hidden_dims=32x32__steps=20"
    bc_dir = base / "bc" / "batch_size=64__env_id=NoSuchEnv-v0__hidden_dims=32x32__steps=20"
    assert finished(iql_dir)  # ... but the other one finished
    recs = [read(iql_dir / f"seed_{s}.json") for s in (0, 1)]
    assert all(rec["steps"] == 20 and rec["config"]["hidden_dims"] == [32, 32] for rec in recs)
    state = read(bc_dir / "sweep_job.json")
    assert state["status"] == "failed" and len(state["attempts"]) == 2  # tried, retried once, recorded
    assert "NoSuchEnv" in state["error"] and all(a["returncode"] != 0 for a in state["attempts"])
    assert not list(bc_dir.glob("seed_*.json")) or not finished(bc_dir)
    assert f"locomotion/hopper-random-v2/bc/{bc_dir.name}: FAILED after 2 attempts" in r.stderr
    assert "2 jobs: 1 failed, 1 finished" in r.stderr
    (sweep_file,) = (results / ".sweeps").glob("*.json")
    doc = read(sweep_file)
    assert doc["spec"]["launcher"] == "ray"
    assert {j["algo"]: j["outcome"]["outcome"] for j in doc["jobs"]} == {"iql": "finished", "bc": "failed"}
    st = offbench(["status", "--results", str(results)], sweep_env["env"], timeout=60)
    assert "2 runs: 1 done, 0 running, 1 failed, 0 pending" in st.stdout
    assert "NoSuchEnv" in st.stdout  # status shows the error of the failed run
