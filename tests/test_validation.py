"""`offbench validate` (issue 17): protocol files are checked, verdicts follow the stated rules from records
alone, and a tiny protocol runs end to end through the sweep machinery."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from offbench.errors import OffbenchError
from offbench.validation.protocol import load_protocol
from offbench.validation.verdicts import all_rows, claim_verdicts, decide

CLAIMS = [
    {
        "id": "better",
        "claim": "A > B",
        "source": "test",
        "group": "g",
        "a": "iql",
        "b": "bc",
        "relation": ">",
        "datasets": ["d1", "d2"],
    },
    {
        "id": "atleast",
        "claim": "A >= B",
        "source": "test",
        "group": "g",
        "a": "iql",
        "b": "bc",
        "relation": ">=",
        "datasets": ["d1", "d2"],
    },
    {
        "id": "reverse",
        "claim": "B >= A",
        "source": "test",
        "group": "g",
        "a": "bc",
        "b": "iql",
        "relation": ">=",
        "datasets": ["d1", "d2"],
    },
    {
        "id": "much",
        "claim": "A >> B, C",
        "source": "test",
        "group": "g",
        "a": "iql",
        "b": ["bc", "awr"],
        "relation": ">>",
        "datasets": ["d1", "d2"],
    },
    {
        "id": "missing",
        "claim": "A >= C on d3",
        "source": "test",
        "group": "g",
        "a": "iql",
        "b": "awr",
        "relation": ">=",
        "datasets": ["d3"],
    },
    {
        "id": "ft",
        "claim": "after > before",
        "source": "test",
        "group": "o",
        "a": "iql",
        "relation": "after>before",
        "datasets": ["d1"],
    },
]


def _protocol(tmp_path, claims=CLAIMS, seeds=5):
    doc = {
        "tier": "t",
        "reduced": True,
        "label": "TEST (reduced)",
        "seeds": seeds,
        "reps": 300,
        "groups": [
            {
                "name": "g",
                "algos": ["iql", "bc", "awr"],
                "suites": ["locomotion"],
                "datasets": ["d1", "d2", "d3"],
                "steps": 100,
            },
            {
                "name": "o",
                "algos": ["iql"],
                "suites": ["locomotion"],
                "datasets": ["d1"],
                "steps": 100,
                "online_steps": 50,
            },
        ],
        "claims": claims,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_protocol(str(path))


def _record(root, algo, ds, seed, score, steps=100, online=0, before=None, status="finished"):
    d = root / "locomotion" / ds / (algo + ("+online" if online else ""))
    d.mkdir(parents=True, exist_ok=True)
    curve = [{"step": steps, "score": before if before is not None else score, "phase": "offline"}]
    if online:
        curve.append({"step": steps + online, "score": score, "phase": "online"})
    rec = {
        "schema": "offbench-run/1",
        "status": status,
        "algo": algo,
        "dataset": ds,
        "seed": seed,
        "steps": steps,
        "online_steps": online,
        "final_score": score,
        "diverged": False,
        "curve": curve,
    }
    (d / f"seed_{seed}.json").write_text(json.dumps(rec))


def test_verdicts_follow_the_rules(tmp_path):
    prot = _protocol(tmp_path)
    rng = np.random.default_rng(0)
    for s in range(5):
        for ds in ("d1", "d2"):
            _record(tmp_path, "iql", ds, s, 80 + rng.normal())  # clearly best
            _record(tmp_path, "bc", ds, s, 40 + rng.normal())
            _record(tmp_path, "awr", ds, s, 79 + rng.normal() * 5)  # close to IQL: ">>" cannot pass against it
        _record(tmp_path, "iql", "d1", s, 60 + rng.normal(), online=50, before=30 + rng.normal())
    rows = all_rows(prot, tmp_path)
    v = claim_verdicts(rows)
    assert v["better"] == "pass" and v["atleast"] == "pass"
    assert v["reverse"] == "fail"
    much = {r["b"]: r["verdict"] for r in rows if r["claim"] == "much"}
    assert much["bc"] == "pass" and much["awr"] in ("inconclusive", "fail") and v["much"] == much["awr"]
    assert v["missing"] == "not run"
    assert v["ft"] == "pass"
    row = next(r for r in rows if r["claim"] == "better")
    assert row["iqm_a_ci"][0] <= row["iqm_a"] <= row["iqm_a_ci"][1] and row["poi"] == pytest.approx(1.0)


def test_equal_scores_are_not_better(tmp_path):
    prot = _protocol(tmp_path, claims=CLAIMS[:2])
    for s in range(5):
        for ds in ("d1", "d2"):
            for algo in ("iql", "bc"):
                _record(tmp_path, algo, ds, s, 0.0)  # e.g. both never reach the goal
    v = claim_verdicts(all_rows(prot, tmp_path))
    assert v == {"better": "fail", "atleast": "pass"}


def test_unfinished_runs_and_other_run_lengths_are_not_counted(tmp_path):
    prot = _protocol(tmp_path, claims=CLAIMS[:1])
    for s in range(5):
        for ds in ("d1", "d2"):
            _record(tmp_path / "a", "iql", ds, s, 90, steps=200)  # another run length
            _record(tmp_path / "a", "bc", ds, s, 10, status="running" if s == 0 else "finished")
    rows = all_rows(prot, tmp_path)
    assert rows[0]["verdict"] == "not run" and "not finished" in rows[0]["note"]


def test_confidence_intervals_are_reproducible():
    from offbench.validation.verdicts import compare

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    first = compare(a, b, 300)
    np.random.seed(123)  # whatever the global generator did before
    assert compare(a, b, 300) == first


def test_decide_thresholds():
    st = {"poi": 0.6, "poi_ci": [0.45, 0.75], "iqm_a_ci": [10, 20], "iqm_b_ci": [5, 15]}
    assert decide(">", st) == "inconclusive" and decide(">=", st) == "pass" and decide(">>", st) == "inconclusive"
    st = {"poi": 0.3, "poi_ci": [0.1, 0.45], "iqm_a_ci": [1, 2], "iqm_b_ci": [3, 4]}
    assert decide(">=", st) == "fail" and decide(">", st) == "fail" and decide(">>", st) == "fail"


def test_bad_protocols_are_refused(tmp_path):
    with pytest.raises(OffbenchError, match="group 'nope'"):
        _protocol(tmp_path, claims=[dict(CLAIMS[0], group="nope")])
    with pytest.raises(OffbenchError, match="does not run"):
        _protocol(tmp_path, claims=[dict(CLAIMS[0], b="cql")])
    with pytest.raises(OffbenchError, match="relation"):
        _protocol(tmp_path, claims=[dict(CLAIMS[0], relation="~")])
    with pytest.raises(OffbenchError, match="unknown tier"):
        load_protocol("nonexistent-tier")


def test_shipped_protocols_load_and_say_reduced():
    cpu, full = load_protocol("cpu"), load_protocol("full")
    assert cpu.reduced and "REDUCED" in cpu.label and not full.reduced
    assert full.seeds == 10 and all(g["steps"] == 1_000_000 for g in full.groups.values())
    assert {a for g in full.groups.values() for a in g["algos"]} >= {
        "iql",
        "bc",
        "filtered_bc",
        "awr",
        "awac",
        "onestep",
        "td3bc",
        "cql",
    }


def test_tiny_protocol_end_to_end(tmp_path, hopper_file):
    """Two algorithms on a tiny file dataset through `offbench validate`: runs, verdict table, figure."""
    from offbench.cli import main

    doc = {
        "tier": "tiny",
        "reduced": True,
        "label": "TINY test tier (reduced)",
        "seeds": 2,
        "reps": 200,
        "groups": [
            {
                "name": "g",
                "algos": ["iql", "bc"],
                "suites": ["locomotion"],
                "datasets": [hopper_file],
                "steps": 40,
                "eval_every": 40,
                "eval_episodes": 2,
                "set": ["hidden_dims=[16,16]", "batch_size=32"],
            }
        ],
        "claims": [
            {
                "id": "c",
                "claim": "IQL >= BC",
                "source": "test",
                "group": "g",
                "a": "iql",
                "b": "bc",
                "relation": ">=",
                "datasets": ["hopper-random-v2"],
            }
        ],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(main, ["validate", "--tier", str(path), "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "r" / "verdicts"
    summary = json.loads((out / "verdicts.json").read_text())
    assert summary["reduced"] and summary["claims"]["c"] in ("pass", "fail", "inconclusive")
    assert "TINY test tier (reduced)" in (out / "verdicts.md").read_text()
    assert (out / "c.png").exists()


def test_dry_run_prints_a_calibrated_wall_time_estimate(tmp_path):
    """Tier full prints its expected wall time, calibrated on this device, before anything runs."""
    from offbench.cli import main

    doc = {
        "tier": "big",
        "reduced": False,
        "label": "BIG test tier",
        "seeds": 1,
        "groups": [
            {"name": "g", "algos": ["bc"], "suites": ["locomotion"], "datasets": ["hopper-medium-v2"], "steps": 1000000}
        ],
        "claims": [
            {
                "id": "c",
                "claim": "x",
                "source": "test",
                "group": "g",
                "a": "bc",
                "b": "bc",
                "relation": ">=",
                "datasets": ["hopper-medium-v2"],
            }
        ],
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(main, ["validate", "--tier", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("expected training wall time"))
    hours = float(line.split("~")[1].split(" h")[0])
    rate = float(line.split("bc ")[1].split(")")[0])
    assert rate > 0 and hours == pytest.approx(1_000_000 / rate / 3600, abs=0.006)  # printed with 2 decimals
    assert not (tmp_path / "r").exists()  # a dry run writes nothing
