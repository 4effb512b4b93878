"""The pipeline: determinism, seeds, one compile for N seeds, resume, records, bad input."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_same_records, interrupted_after_evaluation, tiny_overrides, watchdog

from offbench.cli import main
from offbench.errors import OffbenchError
from offbench.training import offline as pipeline
from offbench.training import run as run_module
from offbench.training.prepare import RunOptions, prepare
from offbench.training.recording import finish


def _opts(hopper_file, tmp_path, **kw):
    base = dict(
        algo="iql",
        suite="locomotion",
        dataset=hopper_file,
        seeds=2,
        steps=60,
        eval_every=30,
        eval_episodes=1,
        overrides=tiny_overrides(log_every=30),
        results=str(tmp_path / "results"),
        progress=False,
    )
    base.update(kw)
    return RunOptions(**base)


def _quiet(_msg):
    pass


def _run_dir(results, algo="iql"):
    """The one variant directory of ``algo`` under ``results`` (the tests' tiny config is one variant)."""
    (d,) = {p.parent for p in Path(results).glob(f"locomotion/hopper-random-v2/{algo}/*/seed_*.json")}
    return d


def test_same_seed_same_numbers_and_seeds_differ(hopper_file, tmp_path):
    a = run_module.run(_opts(hopper_file, tmp_path / "a"), say=_quiet)
    b = run_module.run(_opts(hopper_file, tmp_path / "b"), say=_quiet)
    for ra, rb in zip(a, b):
        assert ra["metrics"] == rb["metrics"] and ra["curve"] == rb["curve"]
    assert a[0]["metrics"] != a[1]["metrics"]
    assert [r["seed"] for r in a] == [0, 1]
    assert all(r["status"] == "finished" and np.isfinite(r["final_score"]) for r in a)


def test_n_seeds_compile_once_and_give_n_results(hopper_file, tmp_path):
    prep = prepare(_opts(hopper_file, tmp_path, seeds=5, steps=90), say=_quiet)
    runner = pipeline.Run(prep, say=_quiet)
    states, keys = runner.init_states()
    book = runner.fresh()
    pipeline.begin_fresh(runner, book)
    pipeline.train_offline(runner, book, states, keys)
    assert runner.chunks.compiles() == 1
    losses = book.last_metrics["critic_loss"]
    assert losses.shape == (5,) and len(set(np.round(losses, 6))) == 5
    recs = finish(runner, book)
    assert len({json.dumps(r["metrics"], sort_keys=True) for r in recs}) == 5


def test_resume_after_interruption_matches_uninterrupted_run(hopper_file, tmp_path, monkeypatch):
    full = run_module.run(_opts(hopper_file, tmp_path / "full", steps=90), say=_quiet)

    # killed at step 60 (the second evaluation), after evaluating and before checkpointing
    with interrupted_after_evaluation(monkeypatch, lambda run, n: n == 2):
        run_module.run(_opts(hopper_file, tmp_path / "resumed", steps=90), say=_quiet)

    # the interrupted run left records that do not look finished
    run_dir = _run_dir(tmp_path / "resumed" / "results")
    rec = json.loads((run_dir / "seed_0.json").read_text())
    assert rec["status"] == "running" and "final_score" not in rec

    resumed = run_module.run(_opts(hopper_file, tmp_path / "resumed", steps=90, resume=True), say=_quiet)
    assert [rr["step"] for rr in resumed] == [90, 90]
    seeds = [{r["seed"]: r for r in recs} for recs in (resumed, full)]
    assert_same_records(*seeds, ("curve", "metrics", "final_score"))


def test_resume_refuses_a_checkpoint_of_another_config_or_length(hopper_file, tmp_path, monkeypatch):
    with interrupted_after_evaluation(monkeypatch, lambda run, n: run.step == 60):  # checkpoint at step 30 of 90
        run_module.run(_opts(hopper_file, tmp_path, steps=90, name="v"), say=_quiet)
    with pytest.raises(OffbenchError, match=r"different config \(expectile: 0.7 -> 0.8\)"):
        run_module.run(
            _opts(
                hopper_file,
                tmp_path,
                steps=90,
                resume=True,
                name="v",
                overrides=tiny_overrides(log_every=30, expectile=0.8),
            ),
            say=_quiet,
        )
    with pytest.raises(OffbenchError, match="different steps 90 in the checkpoint, 60 now"):
        run_module.run(_opts(hopper_file, tmp_path, steps=60, resume=True, name="v"), say=_quiet)
    with pytest.raises(OffbenchError, match="different eval every 30 in the checkpoint, 45 now"):
        run_module.run(_opts(hopper_file, tmp_path, steps=90, eval_every=45, resume=True, name="v"), say=_quiet)
    recs = run_module.run(_opts(hopper_file, tmp_path, steps=90, resume=True, name="v"), say=_quiet)
    assert [r["step"] for r in recs] == [90, 90] and all(r["status"] == "finished" for r in recs)


def test_record_contents(hopper_file, tmp_path):
    recs = run_module.run(_opts(hopper_file, tmp_path, seeds=1), say=_quiet)
    path = _run_dir(tmp_path / "results") / "seed_0.json"
    rec = json.loads(path.read_text())
    assert rec == json.loads(json.dumps(recs[0]))
    assert rec["schema"] == "offbench-run/1" and rec["status"] == "finished"
    assert rec["variant"] == path.parent.name == "batch_size=64__hidden_dims=32x32__log_every=30__steps=60"
    from offbench.config import config_hash

    assert rec["config_hash"] == config_hash(rec["config"])
    assert "recipe_version" in rec["data"] and rec["data"]["recipe_version"] is None  # file data: no recipe
    assert rec["config"]["expectile"] == 0.7 and rec["config"]["hidden_dims"] == [32, 32]
    assert {"jax", "flax", "numpy", "python"} <= set(rec["versions"])
    assert len(rec["data"]["fingerprint"]) == 16 and rec["data"]["kind"] == "file"
    assert rec["reference"] == {"min": -20.272305, "max": 3234.3, "source": "D4RL infos.py"}
    assert [c["step"] for c in rec["curve"]] == [30, 60]
    c = rec["curve"][-1]
    assert c["score"] == pytest.approx(100 * (c["return_mean"] + 20.272305) / (3234.3 + 20.272305))
    # locomotion reward transform: x 1000 / (max - min episode return)
    from offbench.data.loaders import load_d4rl_hdf5

    rets = load_d4rl_hdf5(hopper_file).episode_returns()
    assert rec["data"]["reward_scale"] == pytest.approx(1000 / (rets.max() - rets.min()), rel=1e-5)


def test_cli_tiny_run_end_to_end(hopper_file, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--algo",
            "iql",
            "--suite",
            "locomotion",
            "--dataset",
            hopper_file,
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
            "--set",
            "batch_size=32",
            "--results",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "final normalised score per seed" in res.output
    for s in (0, 1):
        rec = json.loads((_run_dir(tmp_path / "r") / f"seed_{s}.json").read_text())
        assert rec["status"] == "finished" and np.isfinite(rec["final_score"])


def _cli(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--algo", "nope", "--suite", "locomotion"], "unknown algorithm 'nope'; known algorithms: .*iql"),
        (["run", "--algo", "iql", "--suite", "nosuite"], "unknown suite 'nosuite'; known suites: locomotion"),
        (
            ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", "hopper-nope-v2"],
            "suite 'locomotion' has no dataset 'hopper-nope-v2'",
        ),
        (
            ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", "hopper-medium-v2", "--no-fetch"],
            "not available locally: download it with `offbench data download hopper-medium-v2`",
        ),
    ],
)
def test_bad_input_one_line_errors(args, message):
    res = _cli(*args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    import re

    assert re.search(message, lines[0]), lines[0]


def test_bad_config_key_and_value(hopper_file, tmp_path):
    res = _cli(
        "run",
        "--algo",
        "iql",
        "--suite",
        "locomotion",
        "--dataset",
        hopper_file,
        "--set",
        "expectle=0.9",
        "--results",
        str(tmp_path),
    )
    assert res.exit_code == 2 and "unknown config key 'expectle'" in res.output and "expectile" in res.output
    res = _cli(
        "run",
        "--algo",
        "iql",
        "--suite",
        "locomotion",
        "--dataset",
        hopper_file,
        "--set",
        "batch_size=abc",
        "--results",
        str(tmp_path),
    )
    assert res.exit_code == 2 and "batch_size" in res.output
    assert not list(tmp_path.glob("**/seed_*.json"))  # nothing half-written


def test_bad_dataset_file(tmp_path):
    import h5py

    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f["observations"] = np.zeros((5, 11))
    res = _cli("run", "--algo", "iql", "--suite", "locomotion", "--dataset", str(tmp_path / "bad.hdf5"))
    assert res.exit_code == 2 and "missing D4RL keys" in res.output


def test_list_commands():
    res = _cli("list", "algorithms")
    assert res.exit_code == 0 and "iql" in res.output
    res = _cli("list", "suites")
    assert all(s in res.output for s in ("locomotion", "antmaze", "kitchen", "adroit"))
    res = _cli("list", "datasets", "--suite", "locomotion")
    assert "hopper-medium-v2" in res.output and "present" in res.output
    for cmd in ("run", "list"):
        assert _cli(cmd, "--help").exit_code == 0


def test_three_layer_networks_with_vmapped_seeds_do_not_deadlock(hopper_file, tmp_path):
    """Regression: a jitted, vmapped init of 3-layer orthogonally initialised MLPs deadlocked XLA:CPU's
    2-thread pool (batched QR kernels waiting on each other). The run goes in a subprocess with a timeout:
    a hang fails this test, not the whole pytest session."""
    code = (
        f"from offbench.training.offline import RunOptions; from offbench.training.run import run; "
        f"recs = run(RunOptions(algo='iql', suite='locomotion', dataset={hopper_file!r}, seeds=2, steps=20, "
        f"eval_every=20, eval_episodes=1, results={str(tmp_path)!r}, progress=False, "
        f"overrides={{'hidden_dims': [64, 64, 64], 'batch_size': 64, 'log_every': 20}}), say=lambda m: None); "
        f"print('STATUS', [r['status'] for r in recs])"
    )
    what = "a 20-step run with 3-layer networks and 2 vmapped seeds (XLA:CPU deadlock)"
    out = watchdog([sys.executable, "-c", code], timeout=240, what=what)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "STATUS ['finished', 'finished']" in out.stdout
