"""The run as a value (issue 26): the typed, versioned record (offbench.records.record.RunRecord), which owns
"finished", and the host-side bookkeeping checkpointed as one unit (offbench.runs.bookkeeping.Bookkeeping)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from offbench.records import store
from offbench.records.record import SCHEMA_VERSION, OnlineSummary, RunRecord, is_finished
from offbench.runs.bookkeeping import Bookkeeping

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "results/validation/cpu-old-tier-2026-12-01/adroit/door-human-v1/iql/steps=10k/seed_0.json"


def test_a_record_of_the_previous_schema_loads_and_writes_back_unchanged(tmp_path):
    doc = json.loads(OLD.read_text())
    assert "schema_version" not in doc  # written before the typed schema
    rec = RunRecord.from_json(doc)
    assert rec.schema_version == 1 and rec.algo == "iql" and rec.curve == doc["curve"] and not rec.extra
    assert rec.is_finished and rec.final_score == doc["final_score"]
    out = rec.to_json()
    assert out.pop("schema_version") == 1 and out == doc  # nothing lost, nothing added
    written = store.write_record(tmp_path, 0, rec)  # a rewrite is the current version, the same fields
    assert written["schema_version"] == SCHEMA_VERSION
    assert {k: v for k, v in written.items() if k not in ("schema_version", "updated_at")} == {
        k: v for k, v in doc.items() if k != "updated_at"
    }


def test_finished_is_defined_once():
    done = RunRecord(status="finished", final_score=12.5)
    assert done.is_finished and is_finished(done.to_json())
    assert not RunRecord(status="running", final_score=12.5).is_finished
    assert not RunRecord(status="finished", final_score=12.5, diverged=True).is_finished
    for score in (None, math.nan, math.inf, True, "12"):
        assert not RunRecord(status="finished", final_score=score).is_finished, score
    assert not is_finished(None) and not is_finished({}) and not is_finished({"status": "unreadable"})
    # only a finished record carries a final score
    assert "final_score" not in RunRecord(status="running", final_score=1.0).to_json()
    assert RunRecord(status="finished").to_json()["final_score"] is None


def test_a_fine_tuning_record_keeps_its_fields_flat_and_unknown_fields_survive():
    rec = RunRecord(
        status="finished",
        online_steps=60,
        online=OnlineSummary(offline_steps=40, env_steps=60, offline_score=1.0, online_score=2.0, corl_regret=None),
        final_score=2.0,
        extra={"note_from_a_user": [1, 2]},
    )
    doc = rec.to_json()
    assert doc["finetune"] is True and doc["env_steps"] == 60 and doc["online_steps"] == 60
    assert "corl_regret" in doc and "corl_regret_reason" not in doc and "online_successes" not in doc
    assert doc["note_from_a_user"] == [1, 2]
    back = RunRecord.from_json(json.loads(json.dumps(doc)))
    assert back.online == rec.online and back.extra == rec.extra and back.to_json() == doc
    assert RunRecord.from_json({"status": "finished", "final_score": 3.0}).online is None


def test_the_bookkeeping_is_one_checkpointed_unit():
    book = Bookkeeping.fresh([3, 4], offline_steps=40)
    assert book.phase == "offline" and book.curves == [[], []] and book.diverged == [False, False]
    book.step, book.env_steps, book.owed = 52, 6, 0.5
    book.curves[1].append({"step": 52, "score": 1.5})
    book.last_metrics = {"critic_loss": np.asarray([1.25, 2.5], np.float32)}
    book.raw_reward_sum += [1.0, 2.0]
    book.returns_log[0].append(7.0)
    info = json.loads(json.dumps(book.to_info()))  # as checkpoint.json holds it
    assert info["phase"] == "online"
    back = Bookkeeping.from_info(info, [3, 4])
    assert back.to_info() == book.to_info() and back.offline_steps == 40
    assert float(back.last_metrics["critic_loss"][1]) == 2.5
    # a checkpoint written before the bookkeeping was one value (an offline run's: no online fields) resumes
    old = Bookkeeping.from_info({"step": 20, "curves": [[], []], "train_s": 1.5, "diverged": [False, True]}, [0, 1], 40)
    assert (old.step, old.train_s, old.diverged, old.offline_steps, old.env_steps) == (20, 1.5, [False, True], 40, 0)
    assert old.last_metrics == {} and old.raw_reward_sum.tolist() == [0.0, 0.0] and old.phase == "offline"


@pytest.mark.parametrize("field", ["step", "curves", "env_steps", "returns_log", "last_metrics"])
def test_every_bookkeeping_field_reaches_the_checkpoint(field):
    assert field in Bookkeeping.fresh([0]).to_info()


def test_the_spec_is_one_checked_value_and_identify_derives_the_rest(tmp_path):
    from conftest import run_options

    from offbench.errors import OffbenchError
    from offbench.runs.identity import identify
    from offbench.runs.spec import RunSpec, Schedule

    opts = run_options("hopper-medium-v2", tmp_path, preset="quick")
    spec = RunSpec.from_options(opts)
    assert spec.seeds == (0, 1) and spec.schedule == Schedule(40, 0, 20, 1) and spec.finetune is False
    assert spec == RunSpec.of(
        "iql", "locomotion", "hopper-medium-v2", str(tmp_path), steps=40, eval_every=20, eval_episodes=1,
        overrides=opts.overrides, seeds=(0, 1), preset="quick",
    )  # fmt: skip
    ident = identify(spec)
    assert ident.run_dir.parent == tmp_path / "locomotion" / "hopper-medium-v2" / "iql"
    assert ident.variant.endswith("steps=40__preset=quick") and ident.checkpoint_dir.name == "checkpoint-seeds0-1"
    # a smaller rebuild names another variant; fine-tuning is another algorithm folder
    assert identify(spec.replace(data_size=20_000)).variant.endswith("data=20k__preset=quick")
    assert identify(spec.replace(schedule=Schedule(40, 10))).run_dir.parent.name == "iql-online"
    assert spec.replace(from_run=True).finetune and not spec.finetune
    for bad in (dict(steps=-1), dict(steps=10, eval_every=0), dict(steps=10, eval_episodes=True)):
        with pytest.raises(OffbenchError, match=r"^--[a-z-]+ must be an integer >= \d \(got"):
            Schedule(**bad)
    with pytest.raises(OffbenchError, match="seeds must be integers >= 0"):
        RunSpec("iql", "locomotion", "hopper-medium-v2", seeds=(-1,))
