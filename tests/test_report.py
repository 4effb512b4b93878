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
from offbench.report import plots, stats
from offbench.report.collect import collect

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
    return {
        "iql": rng.uniform(0.4, 1.0, size=(5, 4)),
        "bc": rng.uniform(0.2, 0.8, size=(5, 4)),
        "cql": rng.uniform(0.3, 0.9, size=(3, 4)),
    }


def test_aggregates_are_rliables():
    from rliable import library as rly
    from rliable import metrics

    scores = fixed_scores()
    point, ci = stats.aggregates(scores, REPS, seed=3)
    for a, x in scores.items():
        expected = [
            metrics.aggregate_iqm(x),
            metrics.aggregate_median(x),
            metrics.aggregate_mean(x),
            metrics.aggregate_optimality_gap(x),
        ]
        np.testing.assert_allclose(point[a], expected)
        assert np.all(ci[a][0] <= point[a] + 1e-12) and np.all(point[a] <= ci[a][1] + 1e-12)
    np.random.seed(3)  # rliable resamples with numpy's global generator
    ref_point, ref_ci = rly.get_interval_estimates(
        scores,
        lambda x: np.array(
            [
                metrics.aggregate_iqm(x),
                metrics.aggregate_median(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        ),
        reps=REPS,
        random_state=np.random.RandomState(3),
    )
    for a in scores:
        np.testing.assert_allclose(ci[a], ref_ci[a])
    # a hand-checked IQM: the middle half of 0..7 is 2..5
    p, _ = stats.aggregates({"x": np.arange(8.0).reshape(4, 2)}, 20)
    assert p["x"][0] == pytest.approx(3.5) and p["x"][2] == pytest.approx(3.5)
    # optimality gap: mean shortfall below 1
    p, _ = stats.aggregates({"x": np.array([[0.5, 1.5], [0.0, 2.0]])}, 20)
    assert p["x"][3] == pytest.approx((0.5 + 0 + 1.0 + 0) / 4)


def test_probability_of_improvement_and_profiles_are_rliables():
    from rliable import library as rly
    from rliable import metrics

    scores = fixed_scores()
    point, ci = stats.probability_of_improvement(scores, [("iql", "bc"), ("iql", "cql")], REPS, seed=1)
    for x, y in (("iql", "bc"), ("iql", "cql")):
        assert float(point[f"{x},{y}"]) == pytest.approx(metrics.probability_of_improvement(scores[x], scores[y]))
        lo, hi = np.squeeze(ci[f"{x},{y}"])
        assert 0.0 <= lo <= float(point[f"{x},{y}"]) <= hi <= 1.0
    np.random.seed(1)
    _, ref_ci = rly.get_interval_estimates(
        {"iql,bc": (scores["iql"], scores["bc"])},
        metrics.probability_of_improvement,
        reps=REPS,
        random_state=np.random.RandomState(1),
    )
    np.testing.assert_allclose(ci["iql,bc"], ref_ci["iql,bc"])
    # P(X > Y) = 1 when X dominates on every task
    p, _ = stats.probability_of_improvement({"a": np.ones((3, 2)), "b": np.zeros((3, 2))}, [("a", "b")], 20)
    assert float(p["a,b"]) == pytest.approx(1.0)

    taus = np.linspace(0, 1, 11)
    prof, prof_ci = stats.performance_profiles(scores, taus, REPS)
    ref, _ = rly.create_performance_profile(scores, taus, reps=20)
    for a, x in scores.items():
        np.testing.assert_allclose(prof[a], ref[a])
        np.testing.assert_allclose(prof[a], [(x > t).mean() for t in taus])
        assert prof_ci[a].shape == (2, len(taus))


def test_iqm_per_step_matches_rliable_per_frame():
    from rliable import metrics

    x = np.random.RandomState(2).rand(5, 3, 7)
    np.testing.assert_allclose(stats.iqm_per_step(x), [metrics.aggregate_iqm(x[..., j]) for j in range(7)])


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


def row(algo: str) -> str:
    """The report's row of the fixture's runs: every run has the variant name "tiny" (``--name tiny``)."""
    return f"{algo} [tiny]"


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
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--algo",
            "iql",
            "--suite",
            "locomotion",
            "--dataset",
            str(data),
            "--steps",
            "20",
            "--eval-every",
            "10",
            "--eval-episodes",
            "1",
            "--set",
            "hidden_dims=[8,8]",
            "--set",
            "batch_size=8",
            "--set",
            "log_every=10",
            "--results",
            str(res),
            "--name",
            "tiny",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    (real,) = read_records(res)
    assert real["status"] == "finished" and real["algo"] == "iql" and real["dataset"] == "hopper-medium-v2"
    rng = np.random.default_rng(1)
    finals = {}

    def fake(suite, ds, algo, seed, base, status="finished", rebuilt=False, online=False, diverged=False):
        rec = copy.deepcopy(real)
        rec.pop("path")
        rec.update(suite=suite, dataset=ds, algo=algo, seed=seed, status=status, diverged=diverged)
        rec["data"] = dict(
            rec["data"],
            rebuilt=rebuilt,
            kind="rebuilt" if rebuilt else "original",
            label="rebuilt" if rebuilt else "original",
        )
        point = rec["curve"][0]
        curve = [
            dict(point, step=st, phase="offline", score=float(base * (i + 1) / 2 + rng.normal(0, 3)))
            for i, st in enumerate((10, 20))
        ]
        if online:  # a fine-tuning run: 20 offline steps, then 20 online
            curve += [
                dict(point, step=st, phase="online", env_steps=st - 20, score=float(base + 10 + rng.normal(0, 3)))
                for st in (30, 40)
            ]
            rec.update(
                finetune=True,
                offline_steps=20,
                online_steps=20,
                offline_score=curve[1]["score"],
                online_score=curve[-1]["score"],
                corl_regret=0.25,
            )
        rec["curve"] = curve
        rec.pop("final_score", None)
        if status == "finished":
            rec["final_score"] = None if diverged else curve[-1]["score"]
        if diverged:
            rec["final_score_reason"] = "diverged"
        write_record(run_dir(res, suite, ds, algo + ("-online" if online else ""), "tiny"), seed, rec)
        if status == "finished" and not diverged:
            finals[(ds + (" (rebuilt)" if rebuilt else ""), row(algo + ("+online" if online else "")), seed)] = curve[
                -1
            ]["score"]

    finals[("hopper-medium-v2", row("iql"), 0)] = real["final_score"]
    for algo, base in FAKE_ALGOS.items():
        for ds in ("hopper-medium-v2", "walker2d-medium-v2"):
            for s in range(3):
                if (algo, ds, s) in (MISSING, ("iql", "hopper-medium-v2", 0)):
                    continue
                fake(
                    "locomotion",
                    ds,
                    algo,
                    s,
                    base,
                    status="running" if (algo, ds, s) == UNFINISHED else "finished",
                    diverged=(algo, ds, s) == DIVERGED,
                )
        for s in range(3):
            fake("locomotion", "halfcheetah-medium-v2", algo, s, base - 10, rebuilt=True)
            fake("antmaze", "antmaze-umaze-v2", algo, s, base)
            if algo != "bc":
                fake("antmaze", "antmaze-umaze-v2", algo, s, base, online=True)
    yield res, finals
    mp.undo()


@pytest.fixture(scope="module")
def built(results):
    res, finals = results
    out = res.parent / "report_out"
    r = CliRunner().invoke(
        main,
        ["report", "--results", str(res), "--out", str(out), "--reps", "100", "--reference", "--pair", "bc,cql [tiny]"],
    )
    assert r.exit_code == 0, r.output
    return res, out, finals, r.output


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_writes_every_table_and_figure(built):
    res, out, finals, output = built
    for name in (
        "per_dataset",
        "aggregates",
        "probability_of_improvement",
        "offline_to_online",
        "not_averaged",
        "reference_side_by_side",
        "reference_finetune_side_by_side",
        "reference_iql-paper-table1",
        "reference_corl-offline-last",
    ):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    assert "\\begin{tabular}" in (out / "per_dataset.tex").read_text()
    figures = [
        f"{kind}_{scope}"
        for kind in ("aggregates", "performance_profile", "probability_of_improvement")
        for scope in ("locomotion", "antmaze", "all_suites")
    ] + ["learning_curves_locomotion", "learning_curves_antmaze"]
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
    for title in (
        "Final normalised score per dataset",
        "Aggregate metrics",
        "Probability of improvement",
        "Offline → online",
        "Runs not averaged",
        "offbench beside published numbers",
    ):
        assert title in page
    assert "report:" in output and "index.html" in output
    assert not (res / "report").exists()  # --out was honoured


def test_per_dataset_numbers_and_labels(built):
    res, out, finals, _ = built
    rows = {
        (r["dataset"] + (" (rebuilt)" if r["data"] == "rebuilt" else ""), r["algo"]): r
        for r in read_csv(out / "per_dataset.csv")
    }
    for label, algo in {(k[0], k[1]) for k in finals}:
        vals = np.array([v for k, v in finals.items() if k[:2] == (label, algo)])
        line = rows[(label, algo)]
        assert int(line["n_seeds"]) == len(vals)
        assert float(line["mean"]) == pytest.approx(vals.mean(), abs=1e-3)
        assert float(line["std"]) == pytest.approx(vals.std(ddof=1), abs=1e-3)  # pandas' default, said in the notes
        per_seed = {k[2]: v for k, v in finals.items() if k[:2] == (label, algo)}
        assert {s: float(line[f"seed_{s}"]) for s in range(3) if line[f"seed_{s}"]} == pytest.approx(per_seed)
    # the unfinished and the diverged runs are not averaged
    assert int(rows[("hopper-medium-v2", row("cql"))]["n_seeds"]) == 2
    assert int(rows[("walker2d-medium-v2", row("cql"))]["n_seeds"]) == 2
    # best per row
    for label in ("walker2d-medium-v2", "antmaze-umaze-v2"):
        best = max((r for (lb, _), r in rows.items() if lb == label), key=lambda r: float(r["mean"]))
        assert best["highest_mean"] == "True"
        assert sum(r["highest_mean"] == "True" for (lb, _), r in rows.items() if lb == label) == 1
    md = (out / "per_dataset.md").read_text()
    assert "halfcheetah-medium-v2 (rebuilt)" in md and "locomotion total" in md and "antmaze average" in md
    assert "**" in md


def test_unfinished_diverged_and_missing_runs_are_listed(built):
    res, out, _, output = built
    issues = read_csv(out / "not_averaged.csv")
    kinds = {(i["kind"], i["dataset"], i["algo"], i["seed"]) for i in issues}
    assert ("unfinished", "hopper-medium-v2", row("cql"), "2") in kinds
    assert ("diverged", "walker2d-medium-v2", row("cql"), "1") in kinds
    assert any(k[0] == "missing seeds" and k[1:3] == ("walker2d-medium-v2", row("bc")) for k in kinds)
    assert "unfinished" in (out / "index.html").read_text()
    assert f"not averaged: unfinished: locomotion hopper-medium-v2 {row('cql')} seed 2" in output


def test_aggregates_and_poi_tables(built):
    res, out, finals, _ = built
    agg = read_csv(out / "aggregates.csv")
    scopes = {r["scope"] for r in agg}
    assert scopes == {"locomotion", "antmaze", "all suites", "locomotion (rebuilt data)", "antmaze, offline → online"}
    for r in agg:
        assert float(r["ci_low"]) <= float(r["point"]) + 1e-9 <= float(r["ci_high"]) + 2e-9
    # antmaze: one task, every algorithm 3 seeds: the mean is the plain mean of the finals / 100
    for algo in map(row, FAKE_ALGOS):
        mean = next(r for r in agg if r["scope"] == "antmaze" and r["algo"] == algo and r["metric"] == "Mean")
        vals = [v for k, v in finals.items() if k[:2] == ("antmaze-umaze-v2", algo)]
        assert float(mean["point"]) == pytest.approx(np.mean(vals) / 100, abs=1e-5)
    poi = {(r["scope"], r["x"], r["y"]) for r in read_csv(out / "probability_of_improvement.csv")}
    assert {
        ("locomotion", row("iql"), row("bc")),
        ("locomotion", row("iql"), row("cql")),
        ("locomotion", row("bc"), row("cql")),
    } <= poi
    ft = read_csv(out / "offline_to_online.csv")
    assert {r["algo"] for r in ft} == {row("iql+online"), row("cql+online")} and all(
        float(r["corl_regret_mean"]) == 0.25 for r in ft
    )


def test_reference_columns_are_separate_and_labelled(built):
    res, out, finals, _ = built
    side = read_csv(out / "reference_side_by_side.csv")
    for r in side:
        rebuilt = r["dataset"] == "halfcheetah-medium-v2"
        assert bool(r["offbench_rebuilt"]) == rebuilt and bool(r["offbench_original"]) != rebuilt
    iql_hopper = next(r for r in side if r["dataset"] == "hopper-medium-v2" and r["algo"] == row("iql"))
    assert iql_hopper["iql-paper-table1"] == "66.3" and iql_hopper["corl-offline-last"].startswith("67.5")
    md = (out / "reference_side_by_side.md").read_text()
    assert "REBUILT data" in md and "published: IQL paper, Table 1" in md
    # the fixture's runs are 20 steps long, the papers' 1M: every row says so
    assert all(r["paper_run_length"] == "False" and r["steps"] == "20" for r in side)
    assert "20 steps (not the papers' 1M)" in md
    assert "Kostrikov" in (out / "reference_iql-paper-table1.md").read_text()


def test_report_without_reference_has_no_published_numbers(results, tmp_path):
    res, _ = results
    out = tmp_path / "r"
    r = CliRunner().invoke(
        main,
        [
            "report",
            "--results",
            str(res),
            "--out",
            str(out),
            "--reps",
            "20",
            "--suite",
            "antmaze",
            "--algos",
            "iql,cql",
            "--format",
            "csv,md",
        ],
    )
    assert r.exit_code == 0, r.output
    assert not list(out.glob("reference_*")) and not (out / "index.html").exists()
    assert (out / "README.md").exists() and not list(out.glob("*.tex"))
    assert {r["algo"] for r in read_csv(out / "per_dataset.csv")} == set(
        map(row, ("iql", "cql", "iql+online", "cql+online"))
    )


# --------------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "md,docx"], "unknown --format docx"),
        (["--algos", "nosuch"], "--algos nosuch: no records"),
        (["--suite", "kitchen"], "--suite kitchen: no records"),
        (["--pair", "iql"], "--pair 'iql'"),
        (["--pair", "iql,ghost"], "no finished runs of ghost"),
        (["--reps", "0"], "--reps must be at least 1"),
        (["--target", "ghost"], "--target ghost: no finished runs of ghost"),
        (["--reference", "--reference-dir", "/nonexistent"], "has no published_scores.csv"),
    ],
)
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

    code = (
        "import sys; from offbench.cli import main\n"
        "try:\n    main(['report', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('matplotlib', 'rliable') if m in sys.modules])"
    )
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
    rec = json.loads(next(copy_.glob("locomotion/hopper-medium-v2/iql/*/seed_*.json")).read_text())
    for folder in (copy_ / "reference" / "x", copy_ / "myreport" / "x"):
        folder.mkdir(parents=True)
        (folder / "seed_0.json").write_text(json.dumps(dict(rec, algo="ghost")))
    r = CliRunner().invoke(
        main,
        [
            "report",
            "--results",
            str(copy_),
            "--out",
            str(copy_ / "myreport"),
            "--reps",
            "20",
            "--suite",
            "antmaze",
            "--format",
            "csv",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "ghost" not in (copy_ / "myreport" / "per_dataset.csv").read_text()


def test_learning_curve_marks_the_online_phase():
    offline = [{"step": s, "phase": "offline", "score": float(s)} for s in (10, 20)]
    restart = offline + [{"step": s, "phase": "online", "score": 50.0 + s} for s in (5, 10)]  # online counts from 0
    cont = offline + [{"step": s, "phase": "online", "score": 50.0 + s} for s in (25, 30)]
    assert [x for x, _, _ in stats.curve_points({"curve": restart})] == [10, 20, 25, 30]
    assert [x for x, _, _ in stats.curve_points({"curve": cont})] == [10, 20, 25, 30]
    c = stats.learning_curve([[{"curve": cont}, {"curve": cont}]], reps=20)
    # the online phase begins where the offline phase ended (step 20), not at the first online evaluation (25)
    assert c.online_from == 20 and list(c.steps) == [10, 20, 25, 30] and c.runs == 2
    np.testing.assert_allclose(c.point, [10, 20, 75, 80])


# --------------------------------------------------------------------------------------------------
# A cell pools only comparable runs (issue 19.1, 13.8, 14.5)


def synth(
    res: Path,
    algo="iql",
    dataset="hopper-medium-v2",
    suite="locomotion",
    seed=0,
    score=50.0,
    steps=1000,
    variant=None,
    folder=None,
    grid=None,
    **fields,
) -> dict:
    """A finished record as `offbench run` writes it; ``variant=None`` and no ``eval``/``config_hash`` fields: a
    record written before those existed (the extra ``fields`` add or replace them)."""
    grid = grid or (steps // 2, steps)
    rec = {
        "status": "finished",
        "algo": algo,
        "suite": suite,
        "dataset": dataset,
        "seed": seed,
        "steps": steps,
        "eval_episodes": 10,
        "config": {"lr": 3e-4},
        "diverged": False,
        "final_score": score,
        "data": {"kind": "original", "rebuilt": False, "label": "original"},
        "curve": [{"step": s, "phase": "offline", "score": score * (i + 1) / len(grid)} for i, s in enumerate(grid)],
    }
    if variant is not None:
        rec["variant"] = variant
    rec.update(fields)
    write_record(Path(folder or res) / suite / dataset / algo / str(variant or "default"), seed, rec)
    return rec


def report_of(res: Path, out: Path, *args):
    return CliRunner().invoke(main, ["report", "--results", str(res), "--out", str(out), "--reps", "20", *args])


def test_runs_of_different_length_are_separate_rows(tmp_path):
    """The README's quick start (2000 steps, seeds 0 1) beside a sweep in results/iql_paper (1000 steps, seeds 0 1):
    two rows of two seeds each, never one "4 seeds" cell."""
    res = tmp_path / "results"
    for s in (0, 1):
        synth(res, seed=s, steps=2000, score=60.0 + s)
        synth(res, seed=s, steps=1000, score=40.0 + s, folder=res / "iql_paper")
        synth(res, algo="bc", seed=s, steps=1000, score=30.0 + s, folder=res / "iql_paper")
    groups, _ = collect(res)
    cells = {c.row: c for c in groups.values()}
    assert set(cells) == {"iql [2000 steps]", "iql [1000 steps]", "bc"}
    assert cells["iql [2000 steps]"].seeds == [0, 1] and cells["iql [1000 steps]"].seeds == [0, 1]
    r = report_of(res, tmp_path / "rep", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = {x["algo"]: x for x in read_csv(tmp_path / "rep" / "per_dataset.csv")}
    assert int(rows["iql [2000 steps]"]["n_seeds"]) == 2 and float(rows["iql [2000 steps]"]["mean"]) == 60.5
    assert int(rows["iql [1000 steps]"]["n_seeds"]) == 2 and float(rows["iql [1000 steps]"]["mean"]) == 40.5


@pytest.mark.parametrize(
    "field, a, b, label",
    [
        ("config_hash", "aaaaaaaaaaaa", "bbbbbbbbbbbb", "config aaaaaaaaaaaa"),
        ("eval", {"backend": "host", "episodes": 10}, {"backend": "mjx", "episodes": 10}, "host eval"),
        ("eval", {"backend": "host", "episodes": 10}, {"backend": "host", "episodes": 100}, "10 episodes"),
        ("preset", None, "quick", "no preset"),
        (
            "data",
            {"fingerprint": "1111aaaa2222"},
            {"fingerprint": "3333bbbb4444"},
            "data 1111aaaa",
        ),  # e.g. another size
        (
            "data",
            {"rebuilt": True, "label": "rebuilt", "recipe_version": 1},
            {"rebuilt": True, "label": "rebuilt", "recipe_version": 2},
            None,
        ),
    ],
)
def test_what_differs_is_never_pooled(tmp_path, field, a, b, label):
    res = tmp_path / "results"
    synth(res, seed=0, score=10.0, **{field: a})
    synth(res, seed=0, score=90.0, folder=res / "other", **{field: b})  # the same seed: fine, they are other cells
    groups, _ = collect(res)
    assert len(groups) == 2 and all(len(c.records) == 1 for c in groups.values())
    if label is not None:
        assert any(label in c.row for c in groups.values()), [c.row for c in groups.values()]
    else:  # two recipe versions of one dataset: two datasets, labelled by version, never one
        assert {c.task for c in groups.values()} == {
            "hopper-medium-v2 (rebuilt, recipe v1)",
            "hopper-medium-v2 (rebuilt, recipe v2)",
        }


def test_row_qualifiers_name_what_differs():
    """Each field that tells rows apart is named the same way with a value and without one (older records)."""
    from offbench.report.collect import CELL_FIELDS, ROW_FIELDS, _qualifier

    expected = {
        "steps": (2000, "2000 steps", "steps ?"),
        "online_steps": (500, "500 online steps", "online steps ?"),
        "backend": ("mjx", "mjx eval", "eval backend ?"),
        "preset": ("quick", "preset quick", "no preset"),
        "config_hash": ("aaaaaaaaaaaa", "config aaaaaaaaaaaa", "config ?"),
        "episodes": (100, "100 episodes", "episodes ?"),
        "fingerprint": ("1111aaaa2222", "data 1111aaaa", "data ?"),
    }
    assert set(expected) == set(ROW_FIELDS + CELL_FIELDS)
    for field, (value, named, unknown) in expected.items():
        assert (_qualifier(field, value), _qualifier(field, None)) == (named, unknown), field
    with pytest.raises(KeyError):
        _qualifier("variant", "x")


def test_validation_records_are_not_mixed_into_a_results_folders_report(tmp_path):
    """`offbench validate` writes its (committed) records under results/validation/<tier>: `offbench report`
    on results/ leaves them out and says so; pointed at them, it reports them."""
    res = tmp_path / "results"
    synth(res, seed=0, score=60.0)
    for s in (0, 1):
        synth(res, algo="bc", seed=s, score=10.0, folder=res / "validation" / "cpu")
    groups, issues = collect(res)
    assert {c.row for c in groups.values()} == {"iql"}
    (left,) = [i for i in issues if i["kind"] == "not included"]
    assert left["path"] == str(res / "validation")
    assert left["detail"].startswith("2 records written by `offbench validate`, not read with ")
    assert left["detail"].endswith(f"report them with --results {res / 'validation' / 'cpu'}")
    r = report_of(res, tmp_path / "rep", "--format", "md")
    assert r.exit_code == 0, r.output
    assert "not included" in r.output and "offbench validate" in r.output  # on the console
    assert "offbench validate" in (tmp_path / "rep" / "README.md").read_text()  # and in the report
    assert "bc" not in (tmp_path / "rep" / "per_dataset.md").read_text()
    groups, issues = collect(res / "validation" / "cpu")  # named explicitly: reported
    assert {c.row for c in groups.values()} == {"bc"} and all(i["kind"] != "not included" for i in issues)
    only = tmp_path / "only"
    synth(only, seed=0, folder=only / "validation" / "cpu")
    r = report_of(only, tmp_path / "rep2")
    assert r.exit_code == 2 and "no run records under" in r.output
    assert "1 record written by `offbench validate`" in r.output and str(only / "validation" / "cpu") in r.output


def test_duplicate_seeds_are_an_error(tmp_path):
    res = tmp_path / "results"
    synth(res, seed=0, folder=res / "a")
    synth(res, seed=0, folder=res / "b")
    r = report_of(res, tmp_path / "rep")
    assert r.exit_code == 2 and "seed 0 of iql on hopper-medium-v2 is recorded twice" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "rep").exists()  # nothing written


def test_records_without_new_fields_are_read(tmp_path):
    """A record from before this wave (no variant, config_hash, eval, recipe fields, no config at all)."""
    res = tmp_path / "results"
    rec = synth(res, seed=0)
    rec.pop("config")
    write_record(res / "locomotion" / "hopper-medium-v2" / "iql" / "default", 0, rec)
    synth(
        res,
        seed=1,
        score=52.0,
        config_hash="x" * 12,
        variant="default",
        eval={"backend": "host", "episodes": 10, "every": 500, "workers": 1},
    )
    groups, issues = collect(res)
    assert len(groups) == 2 and {c.backend for c in groups.values()} == {None, "host"}
    assert len({c.row for c in groups.values()}) == 2


def test_finetune_rows_do_not_drop_datasets_from_offline_aggregates(tmp_path):
    res = tmp_path / "results"
    for ds in ("hopper-medium-v2", "walker2d-medium-v2"):
        for s in (0, 1):
            synth(res, dataset=ds, seed=s, score=60.0 + s)
            synth(res, algo="bc", dataset=ds, seed=s, score=40.0 + s)
    for s in (0, 1):  # fine-tuned IQL on hopper only
        synth(
            res,
            algo="iql-online",
            seed=s,
            score=80.0,
            finetune=True,
            offline_steps=1000,
            online_steps=1000,
            offline_score=60.0,
            online_score=80.0,
            corl_regret=0.3,
        ).update()
    for p in res.glob("locomotion/hopper-medium-v2/iql-online/default/seed_*.json"):
        p.write_text(p.read_text().replace('"algo": "iql-online"', '"algo": "iql"'))
    r = report_of(res, tmp_path / "rep", "--format", "csv")
    assert r.exit_code == 0, r.output
    agg = read_csv(tmp_path / "rep" / "aggregates.csv")
    offline = {(x["algo"], x["tasks"]) for x in agg if x["scope"] == "locomotion"}
    assert offline == {("iql", "2"), ("bc", "2")}
    assert {x["algo"] for x in agg if x["scope"] == "locomotion, offline → online"} == {"iql+online"}


def test_a_row_on_few_datasets_is_left_out_not_the_datasets(tmp_path):
    from offbench.report.collect import ordered

    res = tmp_path / "results"
    for ds in ("hopper-medium-v2", "walker2d-medium-v2", "halfcheetah-medium-v2"):
        for s in (0, 1):
            synth(res, dataset=ds, seed=s)
            synth(res, algo="bc", dataset=ds, seed=s)
    synth(res, algo="bc", seed=0, steps=500, score=5.0)  # an extra 500-step bc row on hopper only
    groups, _ = collect(res)
    _, rows, _ = ordered(groups)
    ss = stats.score_set(groups, stats.Scope("locomotion", False, False), rows)
    assert len(ss.tasks) == 3 and set(ss.scores) == {"iql", "bc [1000 steps]"}
    assert any(what == "bc [500 steps]" for what, _ in ss.excluded)


def test_rebuilt_data_is_labelled_and_never_pooled_with_original(built):
    res, out, _, _ = built
    agg = read_csv(out / "aggregates.csv")
    assert {x["tasks"] for x in agg if x["scope"] == "locomotion"} == {"2"}  # hopper, walker2d: not halfcheetah
    assert {x["tasks"] for x in agg if x["scope"] == "locomotion (rebuilt data)"} == {"1"}
    assert all(x["rebuilt_data"] == "True" for x in agg if "rebuilt" in x["scope"])
    page = (out / "index.html").read_text()
    for kind in ("Aggregate metrics", "Performance profile", "Learning curves"):
        assert f"{kind}, locomotion (rebuilt data)" in page


def test_rebuilt_aggregates_use_the_newest_recipe(tmp_path):
    res = tmp_path / "results"
    for v, score in ((1, 10.0), (2, 70.0)):
        for s in (0, 1):
            synth(
                res,
                seed=s,
                score=score,
                folder=res / f"v{v}",
                data={"kind": "rebuilt", "rebuilt": True, "label": "rebuilt", "recipe_version": v},
            )
    r = report_of(res, tmp_path / "rep", "--format", "csv,md")
    assert r.exit_code == 0, r.output
    agg = read_csv(tmp_path / "rep" / "aggregates.csv")
    mean = next(x for x in agg if x["metric"] == "Mean")
    assert mean["scope"] == "locomotion (rebuilt data)" and float(mean["point"]) == pytest.approx(0.7)
    assert "hopper-medium-v2 (rebuilt, recipe v1) left out" in (tmp_path / "rep" / "aggregates.md").read_text()


# --------------------------------------------------------------------------------------------------
# Figures (issue 19.8)


def test_one_colour_per_row_across_figures(results, tmp_path, monkeypatch):
    import matplotlib.colors as mcolors

    res, _ = results
    seen = {}
    real_save = plots._save

    def spy(fig, stem):
        for ax in fig.axes:
            for art in list(ax.lines) + list(ax.patches):
                lb = art.get_label()
                if lb.startswith("_") or (art.get_alpha() is not None and art.get_alpha() == 0):
                    continue
                c = art.get_color() if hasattr(art, "get_xdata") else art.get_facecolor()
                seen.setdefault(lb, set()).add(tuple(round(x, 3) for x in mcolors.to_rgb(c)))
        return real_save(fig, stem)

    monkeypatch.setattr(plots, "_save", spy)
    r = report_of(res, tmp_path / "rep", "--format", "md")
    assert r.exit_code == 0, r.output
    rows = {row(a) for a in ("iql", "bc", "cql", "iql+online", "cql+online")}
    assert rows <= set(seen)
    assert all(len(seen[r]) == 1 for r in rows), {r: seen[r] for r in rows}
    assert len({next(iter(seen[r])) for r in rows}) == len(rows)  # and different rows differ
    assert plots.colors(["bc", "iql"])["iql"] == plots.colors(["iql", "cql", "bc"])["iql"]  # stable across reports


def test_online_phase_shaded_from_the_end_of_the_offline_phase():
    # --from with a short online phase: the first online evaluation is the last point
    rec = {
        "offline_steps": 20,
        "curve": [
            {"step": 10, "phase": "offline", "score": 1.0},
            {"step": 20, "phase": "offline", "score": 2.0},
            {"step": 40, "phase": "online", "score": 3.0},
        ],
    }
    c = stats.learning_curve([[rec, rec]], reps=20)
    assert c.online_from == 20 and list(c.steps) == [10, 20, 40]
    assert stats.offline_end({"curve": rec["curve"][:2]}) is None  # offline-only: nothing shaded


def test_curves_keep_each_rows_own_steps(tmp_path):
    res = tmp_path / "results"
    for s in (0, 1):
        synth(res, seed=s, grid=(250, 500, 750, 1000))
        synth(res, algo="bc", seed=s, grid=(500, 1000))
        synth(res, dataset="walker2d-medium-v2", seed=s, grid=(100, 1000))
    groups, _ = collect(res)
    curves, notes = stats.learning_curves(groups, ["iql", "bc"], reps=20)
    (panels,) = curves.values()
    assert list(panels["hopper-medium-v2"]["iql"].steps) == [250, 500, 750, 1000]
    assert list(panels["hopper-medium-v2"]["bc"].steps) == [500, 1000]
    # iql's two datasets were evaluated at different steps: no pooled curve shrunk to their common steps
    assert not any("IQM over" in p for p in panels) and any("different steps" in n for n in notes)


def test_no_repeated_section_headings(built):
    """A section's heading is not repeated by a heading of its table ("Runs not averaged" then "Runs not averaged
    (unfinished, …)"); tables and figures have captions."""
    import re

    _, out, _, _ = built
    page = (out / "index.html").read_text()
    md = (out / "README.md").read_text()
    for heads in (
        re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", page),
        [x.lstrip("#").strip() for x in md.splitlines() if x.startswith("#")],
    ):
        assert "Probability of improvement" in heads and len(heads) == len(set(heads)), heads
        assert not any(b.startswith(a) for a, b in zip(heads, heads[1:])), heads
    assert "<caption>Runs not averaged (unfinished, diverged, missing)</caption>" in page


def test_each_report_cleans_its_own_stale_files_only(results, tmp_path):
    res, _ = results
    out = tmp_path / "rep"
    r = report_of(res, out, "--reference", "--format", "csv,md")
    assert r.exit_code == 0, r.output
    assert list(out.glob("reference_*.csv"))
    (out / "my_notes.txt").write_text("mine")
    (tmp_path / "outside.csv").write_text("not the report's")
    manifest = json.loads((out / "report.json").read_text())
    manifest["files"] += ["../outside.csv", "missing.csv"]  # a name outside the folder; one already gone
    (out / "report.json").write_text(json.dumps(manifest))
    r = report_of(res, out, "--format", "csv,md")
    assert r.exit_code == 0, r.output
    assert not list(out.glob("reference_*")) and "removed" in r.output
    assert (out / "my_notes.txt").read_text() == "mine" and (tmp_path / "outside.csv").exists()
    assert (out / "per_dataset.csv").exists() and "reference_side_by_side.csv" not in (out / "report.json").read_text()


def test_tables_are_rendered_by_pandas(built):
    _, out, _, _ = built
    tex = (out / "per_dataset.tex").read_text()
    assert "\\bfseries" in tex and "\\begin{tabular}" in tex and "\\midrule" in tex and "±" not in tex
    assert '<table id="T_per_dataset"' in (out / "index.html").read_text()
    md = (out / "per_dataset.md").read_text()
    assert "|:--" in md and "--:|" in md  # tabulate's pipe table with the numbers right-aligned


def test_cells_are_escaped_in_every_format():
    from offbench.report.render import Table, frame

    t = Table("t", "a <b> & 50%", frame(["Dataset", "x"], [["d_1 <i>", "1.0 ± 0.1 …"]]), ["note & more"], bold={(0, 1)})
    page = t.html()
    assert "d_1 &lt;i&gt;" in page and "a &lt;b&gt; &amp; 50%" in page and "<i>" not in page
    tex = t.tex()
    assert r"d\_1" in tex and r"\&" in tex and r"50\%" in tex and r"\bfseries 1.0 $\pm$ 0.1 \ldots{}" in tex
    assert "**1.0 ± 0.1 …**" in t.md() and t.csv().startswith("Dataset,x\n")


# --------------------------------------------------------------------------------------------------
# Issue 30: tidy results, best beside final, speed per run, training logs, a report that opens on what matters


def test_tidy_results_runs_and_training_metrics(built):
    import pandas as pd

    res, out, finals, _ = built
    recs = read_records(res)
    tidy = pd.read_csv(out / "results_tidy.csv")
    assert len(tidy) == sum(len(r["curve"]) for r in recs)  # one row per run x seed x evaluation step
    final = tidy[tidy["final"]]
    got = {
        (d + (" (rebuilt)" if k == "rebuilt" else ""), row, s): v
        for d, k, row, s, v in zip(final.dataset, final.data, final.row, final.seed, final.score)
    }
    assert got == pytest.approx(finals)
    assert tidy.groupby(["row", "dataset", "data", "seed"])["best"].sum().max() == 1
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(recs)
    done = runs.dropna(subset=["final_score"])
    assert (done.best_score >= done.final_score - 1e-9).all() and (runs.updates_per_s > 0).all()
    md = (out / "runs.md").read_text()
    assert "Final (headline)" in md and "Best evaluation" in md and "Updates/s" in md
    # the real run's training log is drawn; the page opens on the scores and lists what was not averaged last
    assert (out / "training_metrics_locomotion.png").exists()
    page = (out / "index.html").read_text()
    assert page.index("id='per_dataset'") < page.index("id='runs'") < page.index("id='not_averaged'")
    assert "20 steps (protocol: 1M)" in page and "1 evaluation episodes (protocol: 10)" in page
    assert "Not averaged: " in page and "(listed at the end)" in page
    # antmaze aggregates rest on 1 dataset x 3 runs: their CIs are marked as carrying no information
    agg = read_csv(out / "aggregates.csv")
    assert {r["ci_informative"] for r in agg if r["scope"] == "antmaze"} == {"False"}
    assert "‡" in (out / "aggregates.md").read_text()


def test_missing_runs_by_design_are_one_line_per_row(tmp_path):
    for ds in ("hopper-medium-v2", "walker2d-medium-v2", "halfcheetah-medium-v2"):
        for s in (0, 1):
            synth(tmp_path, dataset=ds, seed=s)
    for s in (0, 1):
        synth(tmp_path, algo="bc", seed=s)
    r = report_of(tmp_path, tmp_path / "rep")
    assert r.exit_code == 0, r.output
    missing = [i for i in read_csv(tmp_path / "rep" / "not_averaged.csv") if i["kind"] == "missing run"]
    assert len(missing) == 1 and missing[0]["algo"] == "bc"
    assert "2 dataset(s)" in missing[0]["detail"] and "walker2d-medium-v2" in missing[0]["detail"]


def test_step_labels_and_distinct_colours():
    from offbench.report import plots

    assert [plots.step_label(x) for x in (500, 2500, 10_000, 1_000_000)] == ["500", "2.5k", "10k", "1M"]
    pal = plots.colors(list(plots.ALGO_ORDER))
    rgb = np.array([pal[a] for a in plots.ALGO_ORDER])
    dist = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(len(rgb), 1)]
    assert dist.min() > 0.25  # seaborn's colorblind palette had bc/awr at 0.20


def _overlapping_text(fig) -> list:
    """Pairs of drawn texts (titles, labels, legend entries, tick labels inside the view) whose boxes overlap."""
    import itertools

    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks, shown = set(), set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            pairs = [*zip(axis.get_major_ticks(), axis.get_majorticklocs())]
            pairs += [*zip(axis.get_minor_ticks(), axis.get_minorticklocs())]
            for tick, loc in pairs:
                for label in (tick.label1, tick.label2):
                    ticks.add(id(label))
                    if lo - 1e-9 * max(1.0, abs(hi)) <= loc <= hi + 1e-9 * max(1.0, abs(hi)):
                        shown.add(id(label))
    boxes = [
        (t.get_text(), t.get_window_extent(renderer))
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and (id(t) not in ticks or id(t) in shown)
    ]
    return [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.width and y.width and x.overlaps(y)]


@pytest.mark.parametrize("n", [1, 2, 8])
def test_figures_have_no_overlapping_text(n, tmp_path, monkeypatch):
    from offbench.report import plots, stats

    found, save = {}, plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, stem: (found.update({stem.name: _overlapping_text(fig)}), save(fig, stem))[1]
    )
    rows, rng = list(plots.ALGO_ORDER[:n]), np.random.default_rng(0)
    pal = plots.colors(rows)
    point = {r: rng.uniform(0.9, 0.95, 4) for r in rows}
    ci = {r: np.stack([point[r] - 0.02, point[r] + 0.02]) for r in rows}
    plots.interval_plot(point, ci, rows, stats.METRICS, tmp_path / "agg", "antmaze: 1 dataset(s)", pal)
    for points in (1, 5):
        steps = np.arange(1, points + 1) * 10_000
        curve = stats.Curve(steps, rng.uniform(40, 60, points), np.full(points, 35.0), np.full(points, 65.0), None, 3)
        panels = {name: {r: curve for r in rows} for name in ("locomotion (IQM)", "hopper-medium-v2", "walker2d")}
        plots.curves_plot(panels, tmp_path / f"curves{points}", "Learning curves, locomotion", pal)
    logs = {m: {r: (np.arange(1, 11) * 1000, rng.uniform(0.5, 1, 10)) for r in rows} for m in ("critic_loss", "q")}
    plots.metrics_plot(logs, tmp_path / "metrics", "Training metrics, locomotion", pal)
    assert set(found) == {"agg", "curves1", "curves5", "metrics"}
    assert {k: v for k, v in found.items() if v} == {}


def test_a_quick_look_says_what_to_expect(tmp_path):
    from offbench import presets

    assert "success rates of 0" in presets.resolve("quick", "antmaze")["note"]
    for s in (0, 1):
        synth(
            tmp_path, suite="antmaze", dataset="antmaze-umaze-v2", seed=s, steps=5000, preset="quick", eval_episodes=10
        )
    r = report_of(tmp_path, tmp_path / "rep")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "preset quick: 5k steps (protocol: 1M); 10 evaluation episodes (protocol: 100)" in page
    assert "Preset on antmaze: quick look (--preset quick)" in page and "success rates of 0" in page
