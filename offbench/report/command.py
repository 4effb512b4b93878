"""``offbench report``: the click command and the report's flow (records -> cells -> statistics -> tables and
figures -> pages). The output folder is cleaned on each report of the files the previous report wrote (listed in
its manifest, ``report.json``); nothing else in it is ever removed.

matplotlib, rliable and pandas are imported inside functions so that ``offbench --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import click

from offbench.errors import OffbenchError

FORMATS = ("md", "csv", "tex", "html")
MANIFEST = "report.json"


@dataclasses.dataclass
class Options:
    results: Path
    out: Path
    formats: tuple
    suites: tuple = ()
    algos: tuple = ()
    datasets: tuple = ()
    target: str | None = None  # None: iql (iql+online for fine-tuning scopes) when present
    pairs: tuple = ()
    reps: int = 2000
    seed: int = 0
    reference: bool = False
    reference_dir: str | None = None


def parse_formats(text: str) -> tuple:
    fs = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in fs if f not in FORMATS]
    if bad or not fs:
        raise OffbenchError(f"unknown --format {', '.join(bad) or repr(text)}; choose from {','.join(FORMATS)}")
    return fs


def resolve_row(name: str, rows, what: str) -> str:
    """A row by its label, or by its algorithm's name when that algorithm has exactly one row."""
    if name in rows:
        return name
    mine = [r for r in rows if r.split(" [")[0] == name]
    if len(mine) == 1:
        return mine[0]
    raise OffbenchError(
        f"{what}: no finished runs of {name} in this report"
        + (f" (it has several rows: {', '.join(mine)}; name one)" if mine else "")
        + f"; rows: {', '.join(rows)}"
    )


def parse_pairs(pairs, rows) -> list[tuple[str, str]]:
    out = []
    for p in pairs:
        parts = [x.strip() for x in re.split(r"[,:]", p)]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise OffbenchError(f"--pair {p!r}: write two different algorithms as X,Y (probability that X beats Y)")
        out.append(tuple(resolve_row(x, rows, f"--pair {p!r}") for x in parts))
    return out


def _pairs_for(scores: dict, target: str | None, pairs: list) -> list:
    if target is None:  # the first IQL row (rows are in report order, IQL first)
        target = next((r for r in scores if r.split(" [")[0] in ("iql", "iql+online")), None)
    out = [(target, r) for r in scores if target in scores and r != target] + pairs
    return [p for p in dict.fromkeys(out) if p[0] in scores and p[1] in scores]


def build(opts: Options, say=lambda m: None) -> dict:
    """Write the report; returns {'files': [...], 'issues': [...], 'tables': {...}, ...}."""
    import numpy as np

    from offbench.report import plots, render, runs, stats, tables
    from offbench.report.collect import collect, ordered
    from offbench.report.html import Block, Section, render_html, render_md
    from offbench.report.reference import load_reference, reference_dir, reference_tables
    from offbench.report.tidy import curves_frame

    if opts.reps < 1:
        raise OffbenchError("--reps must be at least 1 (bootstrap replications; 2000 is a good default)")
    groups, issues = collect(
        opts.results, opts.suites, opts.algos, opts.datasets, skip=[opts.results / "reference", opts.out]
    )
    suites, rows, tasks = ordered(groups)
    n_recs = sum(len(c.records) for c in groups.values())
    say(f"read {n_recs} record(s): {len(groups)} cell(s), {len(rows)} row(s); bootstrap {opts.reps} replications")
    pairs = parse_pairs(opts.pairs, rows)
    target = None if opts.target is None else resolve_row(opts.target, rows, f"--target {opts.target}")
    reference = load_reference(reference_dir(opts.reference_dir, opts.results)) if opts.reference else None
    opts.out.mkdir(parents=True, exist_ok=True)
    palette = plots.colors(rows)

    tbl = {
        "not_averaged": runs.issues_table(runs.compact_missing(issues)),
        "per_dataset": tables.per_dataset_table(groups, suites, rows, tasks),
        "runs": runs.runs_table(groups, suites, rows, tasks),
    }
    figs = {"aggregates": [], "profiles": [], "poi": [], "curves": [], "metrics": []}
    files, agg, poi, notes = [], {}, {}, []
    all_scopes = stats.scopes(groups)
    for k, scope in enumerate(all_scopes, 1):
        ss = stats.score_set(groups, scope, rows)
        notes += [("Left out of the aggregates", f"{scope.name}: {what} left out ({why})") for what, why in ss.excluded]
        notes += [
            ("Seeds left out so every dataset has the same number of runs", f"{scope.name}: {r} on {t}: seeds {d}")
            for r, t, d in ss.truncated
        ]
        if not ss.scores:
            notes.append(("No aggregates (no dataset on which every row has a finished run)", scope.name))
            continue
        say(f"[{k}/{len(all_scopes)}] {scope.name}: aggregates, profiles and P(X > Y) over {len(ss.tasks)} dataset(s)")
        point, ci = stats.aggregates(ss.scores, opts.reps, opts.seed)
        agg[scope] = (ss, point, ci)
        where = f"{scope.name}: {len(ss.tasks)} dataset(s)"
        stem = f"aggregates_{scope.slug}"
        few = runs.few_scores(ss)
        shown = where + (f" (‡ CI from {min(few.values())} scores: uninformative)" if few else "")
        files += plots.interval_plot(point, ci, list(ss.scores), stats.METRICS, opts.out / stem, shown, palette)
        figs["aggregates"].append(
            Block(title=f"Aggregate metrics, {where}", stem=stem, notes=[runs.UNINFORMATIVE] if few else [])
        )
        values = np.concatenate([v.ravel() for v in ss.scores.values()])
        taus = np.linspace(min(0.0, float(values.min())), max(1.0, float(values.max()) * 1.05), 81)
        prof, prof_ci = stats.performance_profiles(ss.scores, taus, opts.reps, opts.seed)
        stem = f"performance_profile_{scope.slug}"
        files += plots.profile_plot(prof, prof_ci, taus, opts.out / stem, f"Performance profile, {where}", palette)
        figs["profiles"].append(Block(title=f"Performance profile, {where}", stem=stem))
        ps = _pairs_for(ss.scores, target, pairs)
        if ps:
            poi[scope] = stats.probability_of_improvement(ss.scores, ps, opts.reps, opts.seed)
            stem = f"probability_of_improvement_{scope.slug}"
            files += plots.poi_plot(*poi[scope], opts.out / stem, f"Probability of improvement, {where}", palette)
            figs["poi"].append(Block(title=f"Probability of improvement, {where}", stem=stem))
    grouped = {}  # one note per kind, its cases after it: not a screenful of near-identical lines
    for kind, case in notes:
        grouped.setdefault(kind, []).append(case)
    notes = [f"{kind}: " + "; ".join(cases) + "." for kind, cases in grouped.items()]
    if agg:
        tbl["aggregates"] = tables.aggregates_table(agg)
        runs.mark_uninformative(tbl["aggregates"], agg)
        tbl["aggregates"].notes += notes
    else:
        tbl["per_dataset"].notes += notes
    if poi:
        tbl["probability_of_improvement"] = tables.poi_table(poi)
    say("learning curves ...")
    curves, curve_notes = stats.learning_curves(groups, rows, opts.reps, opts.seed)
    for scope, panels in curves.items():
        stem = f"learning_curves_{scope.slug}"
        files += plots.curves_plot(panels, opts.out / stem, f"Learning curves, {scope.name}", palette)
        figs["curves"].append(
            Block(
                title=f"Learning curves, {scope.name}",
                stem=stem,
                notes=[
                    "IQM over seeds (first panel: over seeds x datasets) with 95% bootstrap bands, each row at the steps it "
                    "was evaluated at; shaded from the end of the offline phase: online fine-tuning."
                ]
                + [n for n in curve_notes if n.startswith(scope.name + ":")],
            )
        )
    say("training logs (seed_<s>.metrics.csv) ...")
    for suite, panels in runs.training_logs(groups, rows).items():
        panels = {m: lines for m, lines in panels.items() if lines}
        if panels:
            stem = f"training_metrics_{render.slug(suite)}"
            files += plots.metrics_plot(panels, opts.out / stem, f"Training metrics, {suite}", palette)
            note = "From each run's training log (seed_<s>.metrics.csv): mean over seeds and datasets per row."
            figs["metrics"].append(Block(title=f"Training metrics, {suite}", stem=stem, notes=[note]))
    ft = tables.finetune_table(groups, suites, rows, tasks)
    if ft is not None:
        tbl["offline_to_online"] = ft
    ref_tables = reference_tables(groups, suites, rows, tasks, *reference) if reference else []

    n_runs = sum(len(c.records) for c in groups.values())
    n_fin = sum(len(c.finished) for c in groups.values())
    summary = (
        f"{n_runs} run records ({n_fin} finished and averaged) under {opts.results}: suites "
        f"{', '.join(suites)}; rows {', '.join(rows)}; {sum(len(v) for v in tasks.values())} dataset(s). "
        f"Bootstrap: {opts.reps} replications, seed {opts.seed}."
    )
    summary = " ".join([summary, *runs.protocol_notes(groups), *not_averaged_note(issues)])
    layout = (
        ("per_dataset", "Per-dataset scores", ["per_dataset"], None),
        ("aggregates", "Aggregate metrics (rliable)", ["aggregates"], "aggregates"),
        ("profiles", "Performance profiles", [], "profiles"),
        ("poi", "Probability of improvement", ["probability_of_improvement"], "poi"),
        ("curves", "Learning curves", [], "curves"),
        ("metrics", "Training metrics", [], "metrics"),
        ("runs", "Runs: final and best score, wall time, speed", ["runs"], None),
        ("online", "Offline → online", ["offline_to_online"], None),
    )
    sections = []
    for anchor, heading, names, fig in layout:
        blocks = [Block(table=tbl[n]) for n in names if n in tbl] + (figs[fig] if fig else [])
        if blocks:
            sections.append(Section(heading, anchor, blocks))
    if ref_tables:
        sections.append(
            Section(
                "Published reference numbers (not offbench runs)", "reference", [Block(table=t) for t in ref_tables]
            )
        )
    sections.append(Section("Runs not averaged", "not_averaged", [Block(table=tbl["not_averaged"])]))  # last
    all_tables = list(tbl.values()) + ref_tables
    for t in all_tables:
        for fmt, text in (("csv", t.csv), ("tex", t.tex), ("md", lambda t=t: t.md() + "\n")):
            if fmt in opts.formats:
                files.append(_write(opts.out / f"{t.name}.{fmt}", text()))
    if "csv" in opts.formats:
        for name, text in runs.tidy_csvs(groups, curves_frame(groups)).items():
            files.append(_write(opts.out / f"{name}.csv", text))
    if "md" in opts.formats:
        files.append(_write(opts.out / "README.md", render_md("offbench report", summary, sections)))
    if "html" in opts.formats:
        files.append(_write(opts.out / "index.html", render_html("offbench report", summary, sections)))
    removed = clean_stale(opts.out, files)
    _write(opts.out / MANIFEST, json.dumps({"summary": summary, "files": [f.name for f in files]}, indent=1) + "\n")
    return {
        "files": files,
        "removed": removed,
        "issues": issues,
        "tables": tbl,
        "reference_tables": ref_tables,
        "aggregates": agg,
        "poi": poi,
        "curves": curves,
        "sections": sections,
        "palette": palette,
        "groups": groups,
    }


def not_averaged_note(issues: list[dict]) -> list[str]:
    if not issues:
        return []
    kinds = {}
    for i in issues:
        kinds[i["kind"]] = kinds.get(i["kind"], 0) + 1
    return ["Not averaged: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + " (listed at the end)."]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def clean_stale(out: Path, written: list[Path]) -> list[Path]:
    """Remove the files the previous report in ``out`` wrote (its manifest) that this one did not; a file the
    manifest does not name is never touched."""
    try:
        old = json.loads((out / MANIFEST).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    keep = {p.name for p in written} | {MANIFEST}
    removed = []
    for name in old if isinstance(old, list) else []:
        if not isinstance(name, str) or name in keep or Path(name).name != name or name in ("", ".", ".."):
            continue
        p = out / name
        if p.is_file() and not p.is_symlink():
            p.unlink()
            removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------------
# The command


def _split(values) -> tuple:
    return tuple(v.strip() for x in values for v in x.split(",") if v.strip())


@click.command("report")
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder written by `offbench run`.",
)
@click.option("--suite", "suites", multiple=True, help="Only these suites (repeatable or comma-separated).")
@click.option("--algos", "algos", multiple=True, help="Only these algorithms (repeatable or comma-separated).")
@click.option("--datasets", "datasets", multiple=True, help="Only these datasets (repeatable or comma-separated).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder  [default: RESULTS/report]")
@click.option(
    "--format",
    "formats",
    default=",".join(FORMATS),
    show_default=True,
    help="Comma-separated output formats: md, csv, tex, html (figures are always PNG and PDF).",
)
@click.option(
    "--target", default=None, help="Probability of improvement of this row over every other one  [default: iql]"
)
@click.option("--pair", "pairs", multiple=True, metavar="X,Y", help="Also P(X > Y) for this pair; repeatable.")
@click.option("--reps", default=2000, show_default=True, type=int, help="Bootstrap replications for the CIs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed of the bootstrap.")
@click.option("--reference", is_flag=True, help="Add published numbers (IQL paper, CORL) in separate, labelled tables.")
@click.option(
    "--reference-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder with published_scores.csv  [default: results/reference]",
)
def report_command(results, suites, algos, datasets, out, formats, target, pairs, reps, seed, reference, reference_dir):
    """Tables, rliable aggregates (IQM, median, mean, optimality gap with bootstrap CIs), performance
    profiles, probability of improvement and learning curves from the run records under RESULTS."""
    import matplotlib

    matplotlib.use("Agg")
    results = Path(results)
    opts = Options(
        results=results,
        out=Path(out) if out else results / "report",
        formats=parse_formats(formats),
        suites=_split(suites),
        algos=_split(algos),
        datasets=_split(datasets),
        target=target,
        pairs=tuple(pairs),
        reps=reps,
        seed=seed,
        reference=reference,
        reference_dir=reference_dir,
    )
    import logging

    res = build(opts, say=logging.getLogger("offbench").info)  # progress; `offbench -q report` silences it
    for i in res["issues"]:
        click.echo(
            f"not averaged: {i['kind']}: {i['suite']} {i['dataset']} {i['algo']}"
            + (f" seed {i['seed']}" if i["seed"] not in (None, "") else "")
            + f" ({i['detail']})",
            err=True,
        )
    if res["removed"]:
        click.echo(f"removed {len(res['removed'])} file(s) of the previous report in {opts.out}", err=True)
    main = opts.out / ("index.html" if "html" in opts.formats else "README.md")
    click.echo(f"report: {len(res['files'])} files in {opts.out}" + (f"; open {main}" if main.exists() else ""))
