"""The verdict table (pandas: Markdown, CSV, JSON), the absolute-score table beside the published numbers
(``absolute.py``) and one rliable interval-estimate figure per claim."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from offbench.validation.absolute import absolute_rows, absolute_table
from offbench.validation.protocol import Protocol
from offbench.validation.rules import EXACT_LIMIT, RESAMPLES
from offbench.validation.verdicts import all_rows, claim_verdicts


def _ci(v, ci) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"


def _poi(v, ci) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _seeds(v) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(int(v))


def _num(v, fmt) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else format(v, fmt)


def table(rows: list[dict]) -> pd.DataFrame:
    shown = []
    for r in rows:
        shown.append(
            {
                "claim": r["claim"],
                "statement": r["statement"],
                "source": r["source"],
                "datasets": r["datasets"],
                "data": r.get("data", ""),
                "A": r["a"],
                "B": r["b"],
                "relation": r["relation"],
                "seeds": r["seeds"],
                "H0 (pass rejects Δ ≤)": _num(r.get("null"), "+.0f"),
                "Δ = A − B": _num(r.get("delta"), "+.1f"),
                "p": _num(r.get("p"), ".3f") + ("" if r.get("exact", True) else " (MC)"),
                "p against": _num(r.get("p_against"), ".3f"),
                "seeds for power (observed)": _seeds(r.get("seeds_for_power")) if "delta" in r else "",
                "IQM A [95% CI]": _ci(r.get("iqm_a"), r.get("iqm_a_ci")),
                "IQM B [95% CI]": _ci(r.get("iqm_b"), r.get("iqm_b_ci")),
                "P(A>B) [95% CI]": _poi(r.get("poi"), r.get("poi_ci")),
                "verdict": r["verdict"],
                "note": r.get("note", ""),
            }
        )
    return pd.DataFrame(shown)


def figures(protocol: Protocol, rows: list[dict], out: Path) -> list[str]:
    """IQM with its CI for A and each B of every claim that ran (rliable ``plot_interval_estimates``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from rliable import plot_utils

    names = []
    for claim in protocol.claims:
        mine = [r for r in rows if r["claim"] == claim.id and "iqm_a" in r]
        if not mine:
            continue
        pts, cis = {mine[0]["a"]: np.array([mine[0]["iqm_a"]])}, {mine[0]["a"]: np.array(mine[0]["iqm_a_ci"])[:, None]}
        for r in mine:
            pts[r["b"]] = np.array([r["iqm_b"]])
            cis[r["b"]] = np.array(r["iqm_b_ci"])[:, None]
        fig, _ = plot_utils.plot_interval_estimates(
            pts,
            cis,
            metric_names=["IQM"],
            algorithms=list(pts),
            xlabel="Normalised score" + (" (reduced tier)" if protocol.reduced else ""),
        )
        fig.suptitle(f"{claim.id}: {claim.claim}", fontsize=9, y=1.02)
        name = f"{claim.id}.png"
        fig.savefig(out / name, bbox_inches="tight", dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def render(protocol: Protocol, results: Path, out: Path) -> None:
    rows = all_rows(protocol, results)
    verdicts = claim_verdicts(rows)
    df = table(rows)
    df.to_csv(out / "verdicts.csv", index=False)
    header = [
        f"# Validation verdicts — tier {protocol.tier}",
        "",
        protocol.label,
        "",
        f"Protocol: `{protocol.path.name}`; results: `{results}`. Scores are normalised with the reference "
        "returns of the data used (rebuilt data where a dataset is rebuilt); rules in "
        "`offbench/validation/verdicts.py`.",
        "",
        f"Rules: Δ = mean over datasets of (mean A − mean B); one-sided exact stratified permutation tests at "
        f"α = {protocol.alpha} (MC: {RESAMPLES} random relabellings where there are more than {EXACT_LIMIT}); "
        "pass: Δ ≤ margin rejected; fail: Δ ≥ margin rejected; `>` margin 0, `>>` +25, `>=` −10 "
        f"(non-inferiority) unless a claim states one; saturated: all scores within {protocol.saturation_band:g} "
        "points of 100 or of 0. IQM and P(A>B) (rliable, 95% bootstrap CIs) describe, they do not decide.",
        "",
    ]
    overview = pd.DataFrame(
        [
            {
                "claim": c.id,
                "statement": c.claim,
                "source": c.source,
                "margin": c.margin,
                "seeds run": int(protocol.groups[c.group]["seeds"]),
                f"seeds for {protocol.power:.0%} power (expected)": _seeds(
                    c.planned_seeds(protocol.alpha, protocol.power)
                )
                or "—",
                "expected from": (c.expect or {}).get("from", ""),
                "verdict": verdicts[c.id],
            }
            for c in protocol.claims
        ]
    )
    md = (
        "\n".join(header)
        + overview.to_markdown(index=False)
        + "\n\n## Comparisons\n\n"
        + df.drop(columns=["statement", "source"]).to_markdown(index=False)
        + "\n"
    )
    absolute = absolute_rows(protocol, results)
    absolute_table(absolute).to_csv(out / "absolute.csv", index=False)
    md += (
        "\n## Absolute scores beside the published ones\n\n"
        "offbench's mean over its seeds beside each published number for the same algorithm and dataset; rules in "
        "`offbench/validation/absolute.py`: only runs on D4RL's own files at the published run length and dataset "
        'version are compared (rebuilt data: "not comparable: rebuilt"); where the source gives an sd, the '
        "comparison is whether offbench's mean lies in the published 95% CI of the mean (t interval over the "
        "source's seeds); Welch's p describes.\n\n"
        + (absolute_table(absolute).to_markdown(index=False) if absolute else "No finished run has a published number.")
        + "\n"
    )
    pics = figures(protocol, rows, out)
    if pics:
        md += "\n## Figures\n\n" + "\n".join(f"![{p}]({p})" for p in pics) + "\n"
    (out / "verdicts.md").write_text(md)
    (out / "verdicts.json").write_text(
        json.dumps(
            {
                "tier": protocol.tier,
                "reduced": protocol.reduced,
                "label": protocol.label,
                "claims": verdicts,
                "rows": rows,
                "absolute": absolute,
            },
            indent=1,
            allow_nan=False,
            default=str,
        )
    )
