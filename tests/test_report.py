"""`offbench report`: rliable statistics, tables, figures, published reference columns, CLI errors."""
from __future__ import annotations

import copy
import csv
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.records.store import read_records, run_dir, write_record
from offbench.report import report

REPS = 200


# --------------------------------------------------------------------------------------------------
# Statistics are rliable's own

def test_pins_make_rliable_work():
    assert int(metadata.version("pandas").split(".")[0]) < 3
    assert int(metadata.version("arch").split(".")[0]) < 8
    from rliable import library as rly
    from rliable import metrics

    x = np.random.RandomState(0).rand(4, 3)
    point, ci = rly.get_interval_estimates({"a": x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=50)
    assert ci["a"].shape == (2, 1) and ci["a"][0, 0] <= point["a"][0] <= ci["a"][1, 0]


def fixed_scores():
    rng = np.random.RandomState(7)
    return {"iql": rng.uniform(0.4, 1.0, size=(5, 4)), "bc": rng.uniform(0.2, 0.8, size=(5, 4)),
            "cql": rng.uniform(0.3, 0.9, size=(3, 4))}


def test_aggregates_are_rliables():
    from rliable import library as rly
    from rliable import metrics

    scores = fixed_scores()
    point, ci = report.aggregates(scores, REPS, seed=3)
    for a, x in scores.items():
        expected = [metrics.aggregate_iqm(x), metrics.aggregate_median(x), metrics.aggregate_mean(x),
                    metrics.aggregate_optimality_gap(x)]
        np.testing.assert_allclose(point[a], expected)
        assert np.all(ci[a][0] <= point[a] + 1e-12) and np.all(point[a] <= ci[a][1] + 1e-12)
    np.random.seed(3)  # rliable resamples with numpy's global generator
    ref_point, ref_ci = rly.get_interval_estimates(
        scores, lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x), metrics.aggregate_mean(x),
                                    metrics.aggregate_optimality_gap(x)]),
        reps=REPS, random_state=np.random.RandomState(3))
    for a in scores:
        np.testing.assert_allclose(ci[a], ref_ci[a])
    # a hand-checked IQM: the middle half of 0..7 is 2..5
    p, _ = report.aggregates({"x": np.arange(8.0).reshape(4, 2)}, 20)
    assert p["x"][0] == pytest.approx(3.5) and p["x"][2] == pytest.approx(3.5)
    # optimality gap: mean shortfall below 1
    p, _ = report.aggregates({"x": np.array([[0.5, 1.5], [0.0, 2.0]])}, 20)
    assert p["x"][3] == pytest.approx((0.5 + 0 + 1.0 + 0) / 4)


def test_probability_of_improvement_and_profiles_are_rliables():
    from rliable import library as rly
    from rliable import metrics

    scores = fixed_scores()
    point, ci = report.probability_of_improvement(scores, [("iql", "bc"), ("iql", "cql")], REPS, seed=1)
    for x, y in (("iql", "bc"), ("iql", "cql")):
        assert float(point[f"{x},{y}"]) == pytest.approx(metrics.probability_of_improvement(scores[x], scores[y]))
        lo, hi = np.squeeze(ci[f"{x},{y}"])
        assert 0.0 <= lo <= float(point[f"{x},{y}"]) <= hi <= 1.0
    np.random.seed(1)
    _, ref_ci = rly.get_interval_estimates({"iql,bc": (scores["iql"], scores["bc"])}, metrics.probability_of_improvement,
                                           reps=REPS, random_state=np.random.RandomState(1))
    np.testing.assert_allclose(ci["iql,bc"], ref_ci["iql,bc"])
    # P(X > Y) = 1 when X dominates on every task
    p, _ = report.probability_of_improvement({"a": np.ones((3, 2)), "b": np.zeros((3, 2))}, [("a", "b")], 20)
    assert float(p["a,b"]) == pytest.approx(1.0)

    taus = np.linspace(0, 1, 11)
    prof, prof_ci = report.performance_profiles(scores, taus, REPS)
    ref, _ = rly.create_performance_profile(scores, taus, reps=20)
    for a, x in scores.items():
        np.testing.assert_allclose(prof[a], ref[a])
        np.testing.assert_allclose(prof[a], [(x > t).mean() for t in taus])
        assert prof_ci[a].shape == (2, len(taus))


def test_iqm_per_step_matches_rliable_per_frame():
    from rliable import metrics

    x = np.random.RandomState(2).rand(5, 3, 7)
    np.testing.assert_allclose(report.iqm_per_step(x), [metrics.aggregate_iqm(x[..., j]) for j in range(7)])


# --------------------------------------------------------------------------------------------------
# A report over a results folder

def tiny_hdf5(path: Path) -> Path:
    import h5py

    rng = np.random.default_rng(0)
    n = 300
    term = np.zeros(n, bool)
    term[99::100] = True
    with h5py.File(path, "w") as f:
        f["observations"] = rng.normal(size=(n, 11)).astype("f4")
        f["next_observations"] = rng.normal(size=(n, 11)).astype("f4")
        f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype("f4")
        f["rewards"] = rng.normal(size=n).astype("f4")
        f["terminals"] = term
        f["timeouts"] = np.zeros(n, bool)
    return path


FAKE_ALGOS = {"iql": 70.0, "bc": 50.0, "cql": 60.0}
UNFINISHED = ("cql", "hopper-medium-v2", 2)
MISSING = ("bc", "walker2d-medium-v2", 2)
DIVERGED = ("cql", "walker2d-medium-v2", 1)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One real tiny `offbench run` (iql, hopper-medium-v2, seed 0) plus fake records built from its record."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("report")
    mp.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
    mp.setenv("OFFBENCH_DATA_DIR", str(root / "d4rl"))
    res = root / "results"
    data = tiny_hdf5(root / "hopper-medium-v2.hdf5")
    r = CliRunner().invoke(main, ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", str(data), "--steps",
                                  "20", "--eval-every", "10", "--eval-episodes", "1", "--set", "hidden_dims=[8,8]",
                                  "--set", "batch_size=8", "--set", "log_every=10", "--results", str(res),
                                  "--no-progress"])
    assert r.exit_code == 0, r.output
    (real,) = read_records(res)
    assert real["status"] == "finished" and real["algo"] == "iql" and real["dataset"] == "hopper-medium-v2"
    rng = np.random.default_rng(1)
    finals = {}

    def fake(suite, ds, algo, seed, base, status="finished", rebuilt=False, online=False, diverged=False):
        rec = copy.deepcopy(real)
        rec.pop("path")
        rec.update(suite=suite, dataset=ds, algo=algo, seed=seed, status=status, diverged=diverged)
        rec["data"] = dict(rec["data"], rebuilt=rebuilt, kind="rebuilt" if rebuilt else "original",
                           label="rebuilt" if rebuilt else "original")
        point = rec["curve"][0]
        curve = [dict(point, step=st, phase="offline", score=float(base * (i + 1) / 2 + rng.normal(0, 3)))
                 for i, st in enumerate((10, 20))]
        if online:
            curve += [dict(point, step=st, phase="online", env_steps=st - 20, score=float(base + 10 + rng.normal(0, 3)))
                      for st in (30, 40)]
            rec.update(offline_score=curve[1]["score"], online_score=curve[-1]["score"], regret=0.25)
        rec["curve"] = curve
        rec.pop("final_score", None)
        if status == "finished":
            rec["final_score"] = float("nan") if diverged else curve[-1]["score"]
        write_record(run_dir(res, suite, ds, algo), seed, rec)
        if status == "finished" and not diverged:
            finals[(ds + (" (rebuilt)" if rebuilt else ""), algo, seed)] = curve[-1]["score"]

    finals[("hopper-medium-v2", "iql", 0)] = real["final_score"]
    for algo, base in FAKE_ALGOS.items():
        for ds in ("hopper-medium-v2", "walker2d-medium-v2"):
            for s in range(3):
                if (algo, ds, s) in (MISSING, ("iql", "hopper-medium-v2", 0)):
                    continue
                fake("locomotion", ds, algo, s, base, status="running" if (algo, ds, s) == UNFINISHED else "finished",
                     diverged=(algo, ds, s) == DIVERGED)
        for s in range(3):
            fake("locomotion", "halfcheetah-medium-v2", algo, s, base - 10, rebuilt=True)
            fake("antmaze", "antmaze-umaze-v2", algo, s, base, online=algo != "bc")
    yield res, finals
    mp.undo()


@pytest.fixture(scope="module")
def built(results):
    res, finals = results
    out = res.parent / "report_out"
    r = CliRunner().invoke(main, ["report", "--results", str(res), "--out", str(out), "--reps", "100",
                                  "--reference", "--pair", "bc,cql"])
    assert r.exit_code == 0, r.output
    return res, out, finals, r.output


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_writes_every_table_and_figure(built):
    res, out, finals, output = built
    for name in ("per_dataset", "aggregates", "probability_of_improvement", "offline_to_online", "not_averaged",
                 "reference_side_by_side", "reference_finetune_side_by_side", "reference_iql-paper-table1",
                 "reference_corl-offline-last"):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    assert "\\begin{tabular}" in (out / "per_dataset.tex").read_text()
    figures = [f"{kind}_{scope}" for kind in ("aggregates", "performance_profile", "probability_of_improvement")
               for scope in ("locomotion", "antmaze", "all_suites")] + ["learning_curves_locomotion",
                                                                       "learning_curves_antmaze"]
    page = (out / "index.html").read_text()
    readme = (out / "README.md").read_text()
    import matplotlib.image as mpimg

    for stem in figures:
        png = out / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(png)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0  # a real, non-blank image
        assert (out / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
        assert f"src='{stem}.png'" in page and f"({stem}.png)" in readme
    for title in ("Final normalised score per dataset", "Aggregate metrics", "Probability of improvement",
                  "Offline → online", "Runs not averaged", "offbench beside published numbers"):
        assert title in page
    assert "report:" in output and "index.html" in output
    assert not (res / "report").exists()  # --out was honoured


def test_per_dataset_numbers_and_labels(built):
    res, out, finals, _ = built
    rows = {(r["dataset"] + (" (rebuilt)" if r["data"] == "rebuilt" else ""), r["algo"]): r
            for r in read_csv(out / "per_dataset.csv")}
    for (label, algo) in {(k[0], k[1]) for k in finals}:
        vals = np.array([v for k, v in finals.items() if k[:2] == (label, algo)])
        row = rows[(label, algo)]
        assert int(row["n_seeds"]) == len(vals)
        assert float(row["mean"]) == pytest.approx(vals.mean(), abs=1e-3)
        assert float(row["std"]) == pytest.approx(vals.std(), abs=1e-3)
    # the unfinished and the diverged runs are not averaged
    assert int(rows[("hopper-medium-v2", "cql")]["n_seeds"]) == 2
    assert int(rows[("walker2d-medium-v2", "cql")]["n_seeds"]) == 2
    # best per row
    for label in ("walker2d-medium-v2", "antmaze-umaze-v2"):
        best = max((r for (lb, _), r in rows.items() if lb == label), key=lambda r: float(r["mean"]))
        assert best["best"] == "True"
        assert sum(r["best"] == "True" for (lb, _), r in rows.items() if lb == label) == 1
    md = (out / "per_dataset.md").read_text()
    assert "halfcheetah-medium-v2 (rebuilt)" in md and "locomotion total" in md and "antmaze average" in md
    assert "**" in md


def test_unfinished_diverged_and_missing_runs_are_listed(built):
    res, out, _, output = built
    issues = read_csv(out / "not_averaged.csv")
    kinds = {(i["kind"], i["dataset"], i["algo"], i["seed"]) for i in issues}
    assert ("unfinished", "hopper-medium-v2", "cql", "2") in kinds
    assert ("diverged", "walker2d-medium-v2", "cql", "1") in kinds
    assert any(k[0] == "missing seeds" and k[1:3] == ("walker2d-medium-v2", "bc") for k in kinds)
    assert "unfinished" in (out / "index.html").read_text()
    assert "not averaged: unfinished: locomotion hopper-medium-v2 cql seed 2" in output


def test_aggregates_and_poi_tables(built):
    res, out, finals, _ = built
    agg = read_csv(out / "aggregates.csv")
    scopes = {r["scope"] for r in agg}
    assert scopes == {"locomotion", "antmaze", "all suites"}
    for r in agg:
        assert float(r["ci_low"]) <= float(r["point"]) + 1e-9 <= float(r["ci_high"]) + 2e-9
    # antmaze: one task, every algorithm 3 seeds: the mean is the plain mean of the finals / 100
    for algo in FAKE_ALGOS:
        mean = next(r for r in agg if r["scope"] == "antmaze" and r["algo"] == algo and r["metric"] == "Mean")
        vals = [v for k, v in finals.items() if k[:2] == ("antmaze-umaze-v2", algo)]
        assert float(mean["point"]) == pytest.approx(np.mean(vals) / 100, abs=1e-5)
    poi = {(r["scope"], r["x"], r["y"]) for r in read_csv(out / "probability_of_improvement.csv")}
    assert {("locomotion", "iql", "bc"), ("locomotion", "iql", "cql"), ("locomotion", "bc", "cql")} <= poi
    ft = read_csv(out / "offline_to_online.csv")
    assert {r["algo"] for r in ft} == {"iql", "cql"} and all(float(r["regret_mean"]) == 0.25 for r in ft)


def test_reference_columns_are_separate_and_labelled(built):
    res, out, finals, _ = built
    side = read_csv(out / "reference_side_by_side.csv")
    for r in side:
        rebuilt = r["dataset"] == "halfcheetah-medium-v2"
        assert bool(r["offbench_rebuilt"]) == rebuilt and bool(r["offbench_original"]) != rebuilt
    iql_hopper = next(r for r in side if r["dataset"] == "hopper-medium-v2" and r["algo"] == "iql")
    assert iql_hopper["iql-paper-table1"] == "66.3" and iql_hopper["corl-offline-last"].startswith("67.5")
    md = (out / "reference_side_by_side.md").read_text()
    assert "REBUILT data" in md and "published: IQL paper, Table 1" in md
    assert "Kostrikov" in (out / "reference_iql-paper-table1.md").read_text()


def test_report_without_reference_has_no_published_numbers(results, tmp_path):
    res, _ = results
    out = tmp_path / "r"
    r = CliRunner().invoke(main, ["report", "--results", str(res), "--out", str(out), "--reps", "20", "--suite",
                                  "antmaze", "--algos", "iql,cql", "--format", "csv,md"])
    assert r.exit_code == 0, r.output
    assert not list(out.glob("reference_*")) and not (out / "index.html").exists()
    assert (out / "README.md").exists() and not list(out.glob("*.tex"))
    assert {r["algo"] for r in read_csv(out / "per_dataset.csv")} == {"iql", "cql"}


# --------------------------------------------------------------------------------------------------
# Bad arguments

@pytest.mark.parametrize("args, message", [
    (["--format", "md,docx"], "unknown --format docx"),
    (["--algos", "nosuch"], "--algos nosuch: no records"),
    (["--suite", "kitchen"], "--suite kitchen: no records"),
    (["--pair", "iql"], "--pair 'iql'"),
    (["--pair", "iql,ghost"], "no finished runs of ghost"),
    (["--reps", "0"], "--reps must be at least 1"),
    (["--target", "ghost"], "--target ghost: no records"),
    (["--reference", "--reference-dir", "/nonexistent"], "has no published_scores.csv"),
])
def test_bad_arguments_give_one_line_errors(results, tmp_path, args, message):
    res, _ = results
    r = CliRunner().invoke(main, ["report", "--results", str(res), "--out", str(tmp_path / "o"), "--reps", "20"] + args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_missing_or_empty_results_folder(tmp_path):
    r = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "none")])
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no run records" in r.output


def test_help_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = ("import sys; from offbench.cli import main\n"
            "try:\n    main(['report', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('matplotlib', 'rliable') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out and "--reference" in out


def test_unreadable_records_only(tmp_path):
    bad = tmp_path / "res" / "locomotion" / "hopper-medium-v2" / "iql"
    bad.mkdir(parents=True)
    (bad / "seed_0.json").write_text("{not json")
    r = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "res")])
    assert r.exit_code == 2 and "no readable run record" in r.output


def test_out_and_reference_folders_are_not_read(results, tmp_path):
    import shutil

    res, _ = results
    copy_ = tmp_path / "results"
    shutil.copytree(res, copy_)
    rec = json.loads(next(copy_.glob("locomotion/hopper-medium-v2/iql/seed_*.json")).read_text())
    for folder in (copy_ / "reference" / "x", copy_ / "myreport" / "x"):
        folder.mkdir(parents=True)
        (folder / "seed_0.json").write_text(json.dumps(dict(rec, algo="ghost")))
    r = CliRunner().invoke(main, ["report", "--results", str(copy_), "--out", str(copy_ / "myreport"), "--reps", "20",
                                  "--suite", "antmaze", "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert "ghost" not in (copy_ / "myreport" / "per_dataset.csv").read_text()


def test_learning_curve_marks_the_online_phase():
    offline = [{"step": s, "phase": "offline", "score": float(s)} for s in (10, 20)]
    restart = offline + [{"step": s, "phase": "online", "score": 50.0 + s} for s in (5, 10)]  # online counts from 0
    cont = offline + [{"step": s, "phase": "online", "score": 50.0 + s} for s in (25, 30)]
    assert [x for x, _, _ in report.curve_points({"curve": restart})] == [10, 20, 25, 30]
    assert [x for x, _, _ in report.curve_points({"curve": cont})] == [10, 20, 25, 30]
    c = report.learning_curve([[{"curve": cont}, {"curve": cont}]], reps=20)
    assert c.online_from == 25 and list(c.steps) == [10, 20, 25, 30] and c.runs == 2
    np.testing.assert_allclose(c.point, [10, 20, 75, 80])
