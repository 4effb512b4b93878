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
from offbench.validation.verdicts import all_rows, claim_verdicts

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
    assert v == {"better": "saturated", "atleast": "saturated"}  # both at the floor: nothing to decide


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


def _verdict(tmp_path, relation, a_scores, b_scores, **claim):
    """The verdict of one claim A <relation> B on one dataset from constructed per-seed scores."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    c = {"id": "c", "claim": "x", "source": "test", "group": "g", "a": "iql", "b": "bc", "relation": relation}
    prot = _protocol(tmp_path, claims=[{**c, "datasets": ["d1"], **claim}], seeds=len(a_scores))
    for s, (x, y) in enumerate(zip(a_scores, b_scores)):
        _record(tmp_path, "iql", "d1", s, x)
        _record(tmp_path, "bc", "d1", s, y)
    (row,) = all_rows(prot, tmp_path)
    return row


def test_one_inverted_pair_in_three_vs_three_does_not_pass(tmp_path):
    """3 vs 3 with one B above one A: 2 of the C(6,3) = 20 relabellings are at least as extreme, exact p = 0.10
    (the percentile bootstrap of P(A>B) gave a CI of [0.56, 1.00] and passed it)."""
    row = _verdict(tmp_path, ">", [50.0, 60.0, 70.0], [40.0, 55.0, 30.0])
    assert row["p"] == pytest.approx(0.10) and row["exact"] and row["verdict"] == "inconclusive"
    assert row["seeds_for_power"] > 3  # more seeds are needed for this effect and spread
    row = _verdict(tmp_path / "b", ">", [50.0, 60.0, 70.0], [40.0, 45.0, 30.0])  # no inversion: p = 1/20
    assert row["p"] == pytest.approx(0.05) and row["verdict"] == "pass"


def test_each_verdict_from_constructed_tables(tmp_path):
    # saturated: both at the ceiling (pointmaze-umaze, IQL and BC 100 on every seed), or both at the floor
    assert _verdict(tmp_path / "s1", ">", [100.0] * 3, [100.0] * 3)["verdict"] == "saturated"
    assert _verdict(tmp_path / "s2", ">=", [0.0, 1.0, 0.0], [2.0, 0.0, 0.0])["verdict"] == "saturated"
    # ">" fails when B is significantly better
    assert _verdict(tmp_path / "g", ">", [10.0, 12.0, 11.0, 9.0], [30.0, 31.0, 29.0, 33.0])["verdict"] == "fail"
    # ">>" (margin 25): 40 points ahead passes; 10 points ahead is significantly short of 25: fail
    a, b = [80.0, 82.0, 79.0, 81.0], [40.0, 41.0, 39.0, 42.0]
    assert _verdict(tmp_path / "m1", ">>", a, b)["verdict"] == "pass"
    assert _verdict(tmp_path / "m2", ">>", a, [70.0, 71.0, 69.0, 72.0])["verdict"] == "fail"
    # ">=" (non-inferiority, margin 10): kitchen-mixed-like 51.0 vs 51.5 passes; 30 points behind fails; a wide
    # spread is inconclusive
    row = _verdict(tmp_path / "n1", ">=", [50.0, 52.0, 51.0, 51.0], [51.0, 52.0, 52.0, 51.0])
    assert row["verdict"] == "pass" and row["delta"] == pytest.approx(-0.5) and row["null"] == -10.0
    assert _verdict(tmp_path / "n2", ">=", [20.0, 22.0, 21.0, 21.0], [51.0, 52.0, 52.0, 51.0])["verdict"] == "fail"
    row = _verdict(tmp_path / "n3", ">=", [10.0, 90.0, 20.0, 80.0], [60.0, 40.0, 70.0, 30.0])
    assert row["verdict"] == "inconclusive"
    # a claim's own margin: 30 points behind passes a non-inferiority margin of 40
    assert (
        _verdict(tmp_path / "n4", ">=", [20.0, 22.0, 21.0, 21.0], [51.0, 52.0, 52.0, 51.0], margin=40)["verdict"]
        == "pass"
    )


def test_seeds_for_power():
    from offbench.validation.rules import min_exact_seeds, seeds_for_power

    # 2 sd^2 (z_.95 + z_.8)^2 / effect^2 = 2 * 100 * 2.486^2 / 100 = 12.4 -> 13 seeds per algorithm
    assert seeds_for_power(10.0, 10.0, 0.0, 1) == 13
    assert seeds_for_power(10.0, 10.0, 0.0, 4) == 4  # four datasets: a quarter of the variance
    assert seeds_for_power(80.0, 1.0, 0.0, 1) == 3  # huge effect: the exact test's floor, C(6,3) = 20 >= 1/0.05
    assert min_exact_seeds(2, 0.05) == 2 and min_exact_seeds(1, 0.05, paired=True) == 5  # 6^2 >= 20; 2^5 >= 20
    assert seeds_for_power(-0.5, 1.0, 0.0, 1) is None  # no number of seeds shows an effect that is not there


def test_permutation_test_is_exact_then_sampled():
    from offbench.validation.rules import RESAMPLES, two_sample_p

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, (4, 2)), rng.normal(0.0, 1.0, (4, 2))
    small = two_sample_p(a, b)
    assert small["exact"] and small["relabellings"] == 70**2
    big = two_sample_p(rng.normal(1.0, 1.0, (10, 4)), rng.normal(0.0, 1.0, (10, 4)))
    assert not big["exact"] and big["relabellings"] == RESAMPLES and 0 < big["p"] < 0.01


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
    # AntMaze as ikostrikov/implicit_q_learning's README runs it: an evaluation every 100k steps, 100 episodes
    assert full.groups["antmaze"]["eval_every"] == 100_000 and full.groups["antmaze"]["eval_episodes"] == 100
    # the reviewed CPU tier: stitching with IQL, BC, 10%BC, one-step, 30k steps x 4 seeds, 50 episodes at the end
    st = cpu.groups["stitching"]
    assert st["algos"] == ["iql", "bc", "filtered_bc", "onestep"] and st["steps"] == 30_000 and st["seeds"] == 4
    assert st["eval_every"] == 30_000 and st["eval_episodes"] == 50
    mr = next(c for c in cpu.claims if c.id == "loco-iql-ge-bc-mr")
    assert cpu.groups[mr.group]["steps"] == 50_000 and mr.last_evals == 2 and mr.relation == ">="
    for prot in (cpu, full, load_protocol("cpu-finetune")):
        for c in prot.claims:
            # every claim states its expected effect, and the tier runs enough seeds for 80% power at it
            need = c.planned_seeds(prot.alpha, prot.power)
            assert need is not None and need <= prot.groups[c.group]["seeds"], (prot.tier, c.id, need)
            assert "awr" not in c.b or "Table 1" not in c.source  # AWR is not in IQL Table 1
            assert "Table 3" not in c.source or c.relation != "after>before"  # fine-tuning is Table 2
    ids = [c.id for c in full.claims]
    assert "loco-baselines-ge-bc-mr" not in ids and len(ids) == len(set(ids))


def test_too_few_seeds_for_the_exact_test_are_refused(tmp_path):
    # 2 vs 2 on one dataset: C(4, 2) = 6 relabellings, the smallest p is 1/6 > 0.05
    one = [dict(CLAIMS[0], datasets=["d1"])]
    with pytest.raises(OffbenchError, match="at least 3 seeds"):
        _protocol(tmp_path, claims=one, seeds=2)


def test_tiny_protocol_end_to_end(tmp_path, hopper_file):
    """Two algorithms on a tiny file dataset through `offbench validate`: runs, verdict table, figure."""
    from offbench.cli import main

    doc = {
        "tier": "tiny",
        "reduced": True,
        "label": "TINY test tier (reduced)",
        "seeds": 3,
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
    res = CliRunner().invoke(main, ["validate", "--tier", str(path), "--no-estimate", "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "r" / "verdicts"
    summary = json.loads((out / "verdicts.json").read_text())
    assert summary["rows"][0]["data"] == "file"  # the records say what data was used: a D4RL-format file
    assert summary["reduced"] and summary["claims"]["c"] in ("pass", "fail", "inconclusive", "saturated")
    assert "TINY test tier (reduced)" in (out / "verdicts.md").read_text()
    assert (out / "c.png").exists()
    assert json.loads((tmp_path / "r" / "wall_time.json").read_text())["run_groups_s"] > 0  # measured, not estimated


def test_dry_run_prints_a_calibrated_wall_time_estimate(tmp_path):
    """Tier full prints its expected wall time, calibrated on this device, before anything runs."""
    from offbench.cli import main

    doc = {
        "tier": "big",
        "reduced": False,
        "label": "BIG test tier",
        "seeds": 3,
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
    # the rate is printed rounded to an integer (+-0.5) and the hours to 2 decimals (+-0.005): both errors add up
    # (a tolerance of the larger alone failed at rate 186: 1.50 printed, 1.4934 from the rounded rate)
    assert rate > 0.5
    assert 1_000_000 / (rate + 0.5) / 3600 - 0.005 <= hours <= 1_000_000 / (rate - 0.5) / 3600 + 0.005
    assert not (tmp_path / "r").exists()  # a dry run writes nothing


def test_calibration_runs_algorithms_whose_preprocessing_needs_episodes(tmp_path):
    """one-step (next actions within episodes) and 10%BC (top episodes) are calibrated on synthetic episodes; the
    estimate is printed for every tier, so a crash here would stop `offbench validate --tier cpu`."""
    from offbench.validation.command import calibrate

    one = [dict(CLAIMS[0], datasets=["d1"])]
    prot = _protocol(tmp_path, claims=one, seeds=3)
    prot.groups = {"g": {**prot.groups["g"], "algos": ["onestep", "filtered_bc"]}}
    rates = calibrate(prot, seconds=0.05)
    assert set(rates) == {"onestep", "filtered_bc"} and all(r > 0 for r in rates.values())


def test_runs_that_did_not_finish_make_validate_fail(tmp_path, monkeypatch):
    """Every job failed (e.g. an algorithm that cannot import): the verdicts say 'not run' and the command exits
    non-zero naming the runs, instead of reporting success."""
    from offbench.cli import main
    from offbench.validation import command

    monkeypatch.setattr(command, "build_missing", lambda protocol: None)
    monkeypatch.setattr(command, "run_groups", lambda *a, **k: ["g/hopper-random-v2/iql"])
    _protocol(tmp_path)  # writes tmp_path / "p.yaml"
    path = tmp_path / "p.yaml"
    res = CliRunner().invoke(main, ["validate", "--tier", str(path), "--no-estimate", "--results", str(tmp_path / "r")])
    assert res.exit_code == 1, res.output
    assert "did not finish (g/hopper-random-v2/iql)" in res.output and "not run" in res.output
