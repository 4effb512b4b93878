"""The second table of `offbench validate` (issue 28): offbench's absolute scores beside the published ones, compared
only where the data is D4RL's own at the published run length and version. Constructed records; the published
numbers are the shipped `results/reference` tables (CORL: mean +- sd over 4 seeds; the IQL paper: means only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from offbench.validation.absolute import absolute_rows, published_ci, welch_p
from offbench.validation.protocol import load_protocol

MR, UMAZE = "hopper-medium-replay-v2", "antmaze-umaze-v2"


def _protocol(tmp_path, steps=1_000_000):
    doc = {
        "tier": "t",
        "reduced": False,
        "label": "TEST",
        "seeds": 3,
        "reps": 200,
        "groups": [
            {"name": "g", "algos": ["iql", "bc"], "suites": ["locomotion"], "datasets": [MR, UMAZE], "steps": steps}
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
                "datasets": [MR],
            }
        ],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_protocol(str(path))


def _runs(root, algo, ds, scores, data, steps=1_000_000):
    d = root / ds / algo
    d.mkdir(parents=True, exist_ok=True)
    for seed, score in enumerate(scores):
        rec = {
            "schema": "offbench-run/1",
            "status": "finished",
            "algo": algo,
            "dataset": ds,
            "seed": seed,
            "steps": steps,
            "online_steps": 0,
            "final_score": score,
            "curve": [{"step": steps, "score": score, "phase": "offline"}],
            "data": data,
        }
        (d / f"seed_{seed}.json").write_text(json.dumps(rec))


D4RL = {"kind": "original", "rebuilt": False, "metadata": {"source": "d4rl-hdf5"}}
REBUILT = {"kind": "rebuilt", "rebuilt": True, "recipe_version": 3, "metadata": {"source": "minari"}}
HOSTED = {"kind": "original", "rebuilt": False, "metadata": {"source": "minari", "minari_id": "D4RL/antmaze/umaze-v1"}}


def _by(rows, algo, ds, source):
    (row,) = [r for r in rows if r["algo"] == algo and r["dataset"] == ds and r["source"].startswith(source)]
    return row


def test_each_comparison_from_constructed_records(tmp_path):
    prot = _protocol(tmp_path)
    res = tmp_path / "r"
    _runs(res, "iql", MR, [95.0, 97.0, 99.0], D4RL)  # CORL: IQL 97.43 +- 6.39 (4 seeds)
    _runs(res, "bc", MR, [60.0, 61.0, 62.0], D4RL)  # CORL: BC 29.81 +- 2.07
    _runs(res, "iql", UMAZE, [80.0, 82.0, 84.0], REBUILT)
    _runs(res, "bc", UMAZE, [50.0, 55.0, 60.0], HOSTED)
    rows = absolute_rows(prot, res)

    iql = _by(rows, "iql", MR, "CORL")
    lo, hi = published_ci(97.43, 6.39, 4)  # t(0.975, 3) = 3.182: 97.43 +- 10.17
    assert (iql["ci_low"], iql["ci_high"]) == pytest.approx((lo, hi)) and hi - lo == pytest.approx(2 * 10.167, abs=0.01)
    assert iql["comparison"] == "within published CI" and iql["offbench_mean"] == pytest.approx(97.0)
    assert iql["welch_p"] > 0.5
    bc = _by(rows, "bc", MR, "CORL")
    assert bc["comparison"] == "outside published CI (above)" and bc["welch_p"] < 0.001
    # the IQL paper's Table 1 gives means only
    assert _by(rows, "iql", MR, "IQL paper")["comparison"] == "no published CI (mean only)"
    assert _by(rows, "bc", MR, "IQL paper")["difference"] == pytest.approx(61.0 - 18.1)
    # rebuilt data is never compared, whatever the source
    assert {r["comparison"] for r in rows if r["algo"] == "iql" and r["dataset"] == UMAZE} == {
        "not comparable: rebuilt"
    }
    # Minari-hosted AntMaze is a re-creation, not D4RL's files
    assert {r["comparison"] for r in rows if r["algo"] == "bc" and r["dataset"] == UMAZE} == {
        "not comparable: Minari-hosted data"
    }


def test_other_versions_and_run_lengths_are_not_compared(tmp_path):
    res = tmp_path / "r"
    _runs(res, "bc", UMAZE, [50.0, 55.0, 60.0], D4RL)
    rows = absolute_rows(_protocol(tmp_path), res)
    assert _by(rows, "bc", UMAZE, "IQL paper")["comparison"] == "not comparable: published on -v0"
    assert _by(rows, "bc", UMAZE, "CORL")["comparison"] == "within published CI"  # 55.25 +- 4.15, -v2
    short = tmp_path / "short"
    short.mkdir()
    _runs(short / "r", "bc", MR, [30.0, 29.0, 31.0], D4RL, steps=30_000)
    rows = absolute_rows(_protocol(short, steps=30_000), short / "r")
    assert _by(rows, "bc", MR, "CORL")["comparison"] == "not comparable: 30,000 steps (published: 1,000,000)"


def test_welch_p_from_summary_statistics():
    from scipy.stats import ttest_ind

    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0, 9.0]
    ref = ttest_ind(a, b, equal_var=False).pvalue
    p = welch_p(np.mean(a), np.std(a, ddof=1), 3, np.mean(b), np.std(b, ddof=1), 4)
    assert p == pytest.approx(ref)


def test_the_rendered_verdicts_carry_the_second_table(tmp_path):
    from offbench.validation.render import render

    prot = _protocol(tmp_path)
    res = tmp_path / "r"
    _runs(res, "iql", MR, [95.0, 97.0, 99.0], D4RL)
    _runs(res, "bc", MR, [60.0, 61.0, 62.0], REBUILT)
    out = tmp_path / "out"
    out.mkdir()
    render(prot, res, out)
    md = (out / "verdicts.md").read_text()
    assert "## Absolute scores beside the published ones" in md
    assert "within published CI" in md and "not comparable: rebuilt" in md
    assert "absolute" in json.loads((out / "verdicts.json").read_text())
    assert "comparison" in (out / "absolute.csv").read_text()


def test_one_seed_gives_strict_json():
    from offbench.validation.absolute import compare_row

    pub = {"score": "97.43", "std": "6.39", "dataset": MR, "_version_differs": False}
    row = compare_row(np.array([90.0]), pub, 4, "d4rl", 1_000_000, 1_000_000)
    assert row["offbench_sd"] is None and row["welch_p"] is None and row["comparison"] == "within published CI"
    json.dumps(row, allow_nan=False)  # verdicts.json is strict JSON
