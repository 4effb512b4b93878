"""A run's identity and what it may touch (issue 26): a quick look never answers for a full run, adding seeds
adds seeds, nothing a previous run wrote is deleted without --overwrite, Ctrl-C says how to continue, and
``offbench status`` tells finished, resumable, damaged and pending runs apart."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import run_options

from offbench.cli import main
from offbench.errors import OffbenchError
from offbench.records.store import variant_name
from offbench.training import run as run_module


def _opts(data, results, **kw):
    return run_options(data, results, **{"seeds": 1, "eval_workers": 0, **kw})


def _quiet(_):
    pass


def _bytes(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.glob("seed_*.json"))}


def test_the_variant_names_the_preset_and_a_small_build():
    assert variant_name({}, 5000, 0, None, "quick", 20_000) == "steps=5k__data=20k__preset=quick"
    assert variant_name({}, 5000) == "steps=5k" and variant_name({}, 1_000_000) == "default"


def test_a_quick_look_never_answers_for_a_full_run(hopper_file, tmp_path):
    quick = run_module.run(_opts(hopper_file, tmp_path, preset="quick"), say=_quiet)
    assert quick[0]["variant"].endswith("steps=40__preset=quick") and quick[0]["preset"] == "quick"
    said = []
    full = run_module.run(_opts(hopper_file, tmp_path), say=said.append)
    assert full[0]["preset"] is None and Path(full[0]["run_dir"]) != Path(quick[0]["run_dir"])
    assert not any("already finished" in m for m in said)
    # a record of the previous layout (a quick look in the full run's folder) or of other evaluation settings is
    # refused, never taken as this run's, and left as it is
    d = Path(full[0]["run_dir"])
    (d / "seed_0.json").write_text(json.dumps(dict(full[0], preset="quick", eval_episodes=10)))
    before = _bytes(d)
    with pytest.raises(OffbenchError, match=r"seed_0.json is a record of another run \(eval episodes 10 in the record"):
        run_module.run(_opts(hopper_file, tmp_path), say=_quiet)
    with pytest.raises(OffbenchError, match=r"preset 'quick' in the record, None now.*--overwrite replaces it"):
        run_module.run(_opts(hopper_file, tmp_path, eval_episodes=10), say=_quiet)
    assert _bytes(d) == before


def test_adding_seeds_trains_only_the_new_ones(hopper_file, tmp_path):
    first = run_module.run(_opts(hopper_file, tmp_path, seeds=2), say=_quiet)
    d = Path(first[0]["run_dir"])
    before = _bytes(d)
    said = []
    more = run_module.run(_opts(hopper_file, tmp_path, seeds=3), say=said.append)
    assert [r["seed"] for r in more] == [0, 1, 2] and all(r["status"] == "finished" for r in more)
    assert more[2]["seeds_in_run"] == [2] and any("seeds [0, 1] already finished" in m for m in said)
    assert {k: v for k, v in _bytes(d).items() if k != "seed_2.json"} == before  # never rewritten
    assert {p.name for p in d.glob("checkpoint-*")} == {"checkpoint-seeds0-1", "checkpoint-seeds2-2"}
    # with --resume too: every seed is finished, nothing is trained or written
    again = run_module.run(_opts(hopper_file, tmp_path, seeds=3, resume=True), say=_quiet)
    assert [r["final_score"] for r in again] == [r["final_score"] for r in more] and len(_bytes(d)) == 3
    # seeds around a hole are trained alone, in their own checkpoint
    (d / "seed_1.json").unlink()
    shutil.rmtree(d / "checkpoint-seeds0-1")
    assert [r["seed"] for r in run_module.run(_opts(hopper_file, tmp_path, seeds=4), say=_quiet)] == [0, 1, 2, 3]
    assert {p.name for p in d.glob("checkpoint-*")} == {"checkpoint-seeds2-2", "checkpoint-seeds1_3"}
    # an unfinished run and new seeds together: the unfinished run first
    rec = json.loads((d / "seed_3.json").read_text())
    (d / "seed_3.json").write_text(json.dumps(dict(rec, status="running")))
    with pytest.raises(
        OffbenchError, match=r"seeds \[3\] .* unfinished run: continue it first .* then add seeds \[4\]"
    ):
        run_module.run(_opts(hopper_file, tmp_path, seeds=5, resume=True), say=_quiet)


def _interrupted_run(hopper_file, results) -> Path:
    """A run of one seed as a kill after its first evaluation leaves it: a ``running`` record and a checkpoint."""
    recs = run_module.run(_opts(hopper_file, results, name="v"), say=_quiet)
    d = Path(recs[0]["run_dir"])
    (d / "seed_0.json").write_text(json.dumps(dict(recs[0], status="running")))
    return d


def test_a_damaged_latest_is_named_and_never_deletes_the_checkpoint(hopper_file, tmp_path):
    d = _interrupted_run(hopper_file, tmp_path)
    ck = d / "checkpoint-seeds0-0"
    (unit,) = ck.glob("unit-*")
    (ck / "LATEST").write_text("{not json")
    with pytest.raises(OffbenchError, match=r"seeds 0 \(running\) already have records"):
        run_module.run(_opts(hopper_file, tmp_path, name="v"), say=_quiet)
    damaged = rf"checkpoint-seeds0-0 is damaged \(its LATEST file is missing or unreadable; it holds {unit.name}\)"
    with pytest.raises(OffbenchError, match=damaged + r"; --overwrite deletes it and starts seeds \[0\] over$"):
        run_module.run(_opts(hopper_file, tmp_path, name="v", resume=True), say=_quiet)
    assert (unit / "state.npz").exists()  # the intact unit is still there
    again = run_module.run(_opts(hopper_file, tmp_path, name="v", overwrite=True), say=_quiet)
    assert again[0]["status"] == "finished"


def test_ctrl_c_says_where_the_run_stopped_and_how_to_resume(hopper_file, tmp_path, monkeypatch):
    from offbench.training import offline

    original, calls = offline.evaluate, {"n": 0}

    def interrupted(*a, **k):
        out = original(*a, **k)
        calls["n"] += 1
        if calls["n"] == 2:  # after the second evaluation, before its checkpoint
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(offline, "evaluate", interrupted)
    args = ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", hopper_file, "--steps", "40"]
    args += ["--eval-every", "20", "--eval-episodes", "1", "--set", "hidden_dims=[32,32]", "batch_size=64"]
    args += ["--results", str(tmp_path), "--no-progress", "--overwrite"]
    monkeypatch.setattr(sys, "argv", ["offbench", *args])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 130, res.output
    last = res.output.strip().splitlines()[-1]
    assert "last checkpoint is at step 20" in last and "Aborted" not in res.output, res.output
    assert last.endswith("--no-progress --resume") and "--overwrite" not in last and "offbench run --algo iql" in last


def test_status_tells_finished_resumable_damaged_and_pending_apart(hopper_file, tmp_path):
    d = _interrupted_run(hopper_file, tmp_path)
    rec = json.loads((d / "seed_0.json").read_text())
    (d / "seed_0.json").write_text(json.dumps(dict(rec, status="finished", final_score=1.0)))
    for name in ("resumable", "bad-latest", "bad-record", "pending"):
        shutil.copytree(d, d.parent / name)
    (d.parent / "resumable" / "seed_0.json").write_text(json.dumps(dict(rec, command="offbench run --algo iql")))
    (d.parent / "bad-latest" / "seed_0.json").write_text(json.dumps(rec))
    (d.parent / "bad-latest" / "checkpoint-seeds0-0" / "LATEST").write_text("")
    (d.parent / "bad-record" / "seed_0.json").write_text('{"status": "runn')  # truncated
    (d.parent / "pending" / "seed_0.json").write_text(json.dumps(rec))
    shutil.rmtree(d.parent / "pending" / "checkpoint-seeds0-0")
    res = CliRunner().invoke(main, ["status", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rows = {ln.split()[8]: ln for ln in res.output.splitlines()[1:-1]}
    assert {k: v.split()[0] for k, v in rows.items()} == {
        "v": "done",
        "resumable": "resumable",
        "bad-latest": "damaged",
        "bad-record": "damaged",
        "pending": "pending",
    }, res.output
    assert "interrupted at step 40; `offbench run --algo iql --resume`" in rows["resumable"]
    assert "LATEST file is missing or unreadable" in rows["bad-latest"] and "--overwrite" in rows["bad-latest"]
    assert "seed_0.json cannot be read" in rows["bad-record"]
    assert res.output.splitlines()[-1] == "5 runs: 1 done, 0 running, 0 failed, 1 pending, 1 resumable, 2 damaged"
