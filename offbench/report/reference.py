"""Published reference numbers (``--reference``): one table per source, and offbench's own scores beside them in
separate, labelled columns (original data | rebuilt data | one column per source), never mixed. Rows trained for
another length than the papers' 1M steps say so."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from offbench.errors import OffbenchError
from offbench.report.collect import PAPER_STEPS
from offbench.report.render import Table, frame, mean_std, pm


def canon(name: str) -> str:
    """Method names compared across sources: lower-case letters and digits ('TD3+BC' -> 'td3bc')."""
    s = re.sub(r"[^a-z0-9]", "", name.lower())
    return {"bc10": "10bc", "percentbc": "10bc", "filteredbc": "10bc", "onesteprl": "onestep"}.get(s, s)


def base_name(dataset: str) -> str:
    return re.sub(r"-v\d+$", "", dataset)


def reference_dir(option: str | None, results: Path) -> Path:
    if option:
        p = Path(option)
        if not (p / "published_scores.csv").exists():
            raise OffbenchError(f"--reference-dir {p} has no published_scores.csv")
        return p
    for p in (results / "reference", Path("results") / "reference"):
        if (p / "published_scores.csv").exists():
            return p
    from offbench.resources import reference_dir as packaged

    return packaged()


def load_reference(folder: Path) -> tuple[list[dict], dict]:
    rows = pd.read_csv(folder / "published_scores.csv", dtype=str, keep_default_na=False).to_dict("records")
    labels = {}
    if (folder / "sources.csv").exists():
        labels = {
            r["source"]: r
            for r in pd.read_csv(folder / "sources.csv", dtype=str, keep_default_na=False).to_dict("records")
        }
    return rows, labels


def _match(rows, name):
    exact = [r for r in rows if r["dataset"] == name]
    return exact or [r for r in rows if base_name(r["dataset"]) == base_name(name)]


def _cell(r, with_version_of=None) -> str:
    v = f"{float(r['score']):.1f}" + (f" ± {float(r['std']):.1f}" if r.get("std") else "")
    if with_version_of and r["dataset"] != with_version_of:
        v += f" [{r['dataset'][len(base_name(r['dataset'])) + 1 :]}]"
    return v


def source_tables(by_source, labels, names, ours) -> list[Table]:
    tables = []
    for src, rows in by_source.items():
        title = labels.get(src, {}).get("label", src)
        cite = labels.get(src, {}).get("citation", src)
        finetune = any(r["phase"] == "online" for r in rows)
        methods = list(dict.fromkeys(r["method"] for r in rows))
        out = []
        for name in names:
            m = _match(rows, name)
            if not m:
                continue
            ds = m[0]["dataset"]
            vals = {(r["method"], r["phase"]): r for r in m if r["dataset"] == ds}
            line = [ds]
            for k in methods:
                off, on = vals.get((k, "offline")), vals.get((k, "online"))
                if finetune:
                    line.append(f"{_cell(off) if off else '?'} → {_cell(on) if on else '?'}" if off or on else "–")
                else:
                    line.append(_cell(off) if off else "–")
            out.append(line)
        if not out:
            continue
        cols = ["Dataset (as published)"] + [f"{k} ✓" if canon(k) in ours else k for k in methods]
        what = " (offline → after online fine-tuning)" if finetune and "fine-tuning" not in title else ""
        tidy = frame(cols, out).assign(source=src)
        tables.append(
            Table(
                f"reference_{src}",
                f"Published: {title}{what}",
                frame(cols, out),
                [f"Source: {cite}. Published numbers, not offbench runs. ✓: an algorithm in this report."],
                tidy,
            )
        )
    return tables


def _length(c) -> str:
    text = f"{c.steps} steps" if c.steps is not None else "? steps"
    if c.finetune:
        text += f" + {c.online_steps} online"
    return text + ("" if c.steps == PAPER_STEPS else " (not the papers' 1M)")


def side_by_side(groups, cells, by_source, labels, kind: str, srcs) -> Table | None:
    lines, tidy = [], []
    for c in cells:
        if kind == "offline":
            if c.finetune or not len(c.scores):
                continue
            mine = f"{pm(*mean_std(c.scores))} (n={len(c.scores)})"
        else:
            recs = [r for r in c.finished if r.get("online_score") is not None and r.get("offline_score") is not None]
            if not recs:
                continue
            off = np.array([float(r["offline_score"]) for r in recs])
            on = np.array([float(r["online_score"]) for r in recs])
            mine = f"{pm(*mean_std(off))} → {pm(*mean_std(on))} (n={len(recs)})"
        line = [c.dataset, c.row, _length(c), "" if c.rebuilt else mine, mine if c.rebuilt else ""]
        for src in srcs:
            cand = [r for r in _match(by_source[src], c.dataset) if canon(r["method"]) == canon(c.algo)]
            off = [r for r in cand if r["phase"] == "offline"]
            on = [r for r in cand if r["phase"] == "online"]
            if kind == "offline":
                line.append(_cell(off[0], c.dataset) if off else "")
            else:
                line.append(
                    f"{_cell(off[0]) if off else '?'} → {_cell(on[0], c.dataset) if on else '?'}" if off or on else ""
                )
        lines.append(line)
        tidy.append(
            {
                "dataset": c.dataset,
                "algo": c.row,
                "algorithm": c.algo,
                "steps": c.steps,
                "online_steps": c.online_steps,
                "paper_run_length": c.steps == PAPER_STEPS,
                "offbench_original": line[3],
                "offbench_rebuilt": line[4],
                **{src: v for src, v in zip(srcs, line[5:])},
            }
        )
    if not lines:
        return None
    used = [k for k in range(len(srcs)) if any(r[5 + k] for r in lines)]  # sources with a number here
    lines = [r[:5] + [r[5 + k] for k in used] for r in lines]
    dropped = [srcs[k] for k in range(len(srcs)) if k not in used]
    srcs = [srcs[k] for k in used]
    cols = ["Dataset", "Row", "Run length", "offbench, original data", "offbench, REBUILT data (not comparable)"] + [
        f"published: {labels.get(s, {}).get('label', s)}" for s in srcs
    ]
    name, title = (
        ("reference_side_by_side", "offbench beside published numbers (offline)")
        if kind == "offline"
        else ("reference_finetune_side_by_side", "offbench beside published numbers (offline → online)")
    )
    return Table(
        name,
        title,
        frame(cols, lines),
        [
            "offbench's own scores (finished seeds, mean ± std) in the 'offbench' columns: runs on the original D4RL data "
            "and runs on datasets rebuilt by `offbench data build` are never in the same column. The other columns are "
            "published numbers, one column per source; [vN] marks a published dataset version that differs from "
            "offbench's. The papers train for 1M offline steps: a row at another run length says so."
        ],
        pd.DataFrame(tidy).drop(columns=dropped),
    )


def reference_tables(groups, suites, rows, tasks, ref_rows, labels) -> list[Table]:
    """One table per source with its numbers for the report's datasets; offbench beside them (offline, and
    offline -> online), one line per (dataset, row)."""
    by_source = defaultdict(list)
    for r in ref_rows:
        by_source[r["source"]].append(r)
    cells = [groups[(s, t, r)] for s in suites for t in tasks[s] for r in rows if (s, t, r) in groups]
    names = sorted({c.dataset for c in cells})
    ours = {canon(c.algo) for c in cells}
    off_srcs = [s for s in by_source if not any(r["phase"] == "online" for r in by_source[s])]
    ft_srcs = [s for s in by_source if s not in off_srcs]
    side = [
        side_by_side(groups, cells, by_source, labels, kind, srcs)
        for kind, srcs in (("offline", off_srcs), ("finetune", ft_srcs))
    ]
    return [t for t in side if t is not None] + source_tables(by_source, labels, names, ours)
