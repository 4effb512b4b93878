"""The Python API (issue 30): ``import offbench`` stays cheap; the notebook-style example runs end to end (run,
load a policy, evaluate it, tidy results, rliable, the training log); bad input is one clear error."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import offbench
from offbench.errors import OffbenchError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "api.py"


def test_import_offbench_is_cheap():
    code = "import sys, offbench; print(sorted(m for m in ('jax', 'pandas', 'offbench.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert offbench.run.__module__ == "offbench.api"
    with pytest.raises(AttributeError):
        offbench.no_such_thing  # noqa: B018


def test_the_example_runs_end_to_end(hopper_file, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    argv = ["api.py", "--dataset", hopper_file, "--steps", "20", "--eval-every", "10", "--episodes", "2"]
    argv += ["--results", str(results), "--set", "hidden_dims=[32,32]", "batch_size=64", "log_every=10"]
    monkeypatch.setattr(sys, "argv", argv)
    ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    recs, df = ns["records"], ns["df"]
    assert [r["seed"] for r in recs] == [0, 1] and all(r["status"] == "finished" for r in recs)
    # one row per run x seed x evaluation step; final marks the record's final score
    assert len(df) == 4 and sorted(zip(df.seed, df.step)) == [(0, 10), (0, 20), (1, 10), (1, 20)]
    final = df[df.final].set_index("seed")["score"]
    assert final.to_dict() == pytest.approx({r["seed"]: r["final_score"] for r in recs})
    assert df.best.sum() == 2 and set(df.algorithm) == {"iql"} and set(df.data) == {"file"}
    assert (df.updates_per_s > 0).all() and (df.wall_time_s > 0).all()
    # the loaded policy is the trained one: evaluated from the run's reset seeds it scores the record's score
    assert ns["evaluation"]["score"] == pytest.approx(recs[0]["final_score"], rel=1e-4, abs=1e-3)
    assert ns["policy"](ns["obs"]).shape == (3,)
    assert ns["scores"]["iql [api-example]"].shape == (2, 1)
    assert list(ns["log"].step) == [10, 20] and "critic_loss" in ns["log"]
    assert "score" in capsys.readouterr().out


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(OffbenchError, match="unknown option.*stepz.*known: .*steps"):
        offbench.run("iql", "locomotion", "x.hdf5", stepz=10)
    with pytest.raises(OffbenchError, match="no record of seed 0"):
        offbench.load_policy(tmp_path)
    with pytest.raises(OffbenchError, match="does not exist"):
        offbench.results(tmp_path / "nothing")


def test_cli_messages_go_through_logging(capsys):
    import logging

    from offbench.options import cli_logging

    log = logging.getLogger("offbench")
    level, propagate = log.level, log.propagate
    try:
        cli_logging(logging.WARNING)  # offbench -q
        log.info("compiling the training step ...")
        log.warning("preset quick: not the paper's protocol")
        cli_logging(logging.INFO)  # the default: the CLI's messages as before, once
        log.info("resumed from step 20")
        assert capsys.readouterr().err.splitlines() == [
            "preset quick: not the paper's protocol",
            "resumed from step 20",
        ]
    finally:
        log.setLevel(level)
        log.propagate = propagate
