"""Figures of ``offbench report`` with rliable's own plotting functions (``plot_interval_estimates``,
``plot_performance_profiles``, ``plot_probability_of_improvement``, ``plot_sample_efficiency_curve``); matplotlib's
Agg backend. Each figure is written as ``STEM.png`` and ``STEM.pdf``. Every figure of one report draws a row in
the same colour (:func:`colors`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

# the registered algorithms in a fixed order, so that an algorithm keeps its colour from report to report
ALGO_ORDER = ("iql", "bc", "filtered_bc", "awr", "awac", "onestep", "td3bc", "cql")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10})
    return plt


def colors(rows) -> dict:
    """One colour per row for every figure: a registered algorithm's plain row has its fixed colour (seaborn's
    colorblind palette, rliable's default); other rows (variants, fine-tuning, other algorithms) take the next
    free colours in order."""
    import seaborn as sns

    palette = [tuple(c) for c in sns.color_palette("colorblind", 10)] + [
        tuple(c) for c in sns.color_palette("tab20", 20)
    ]
    out, taken = {}, set()
    for r in rows:  # the first row of a registered algorithm takes that algorithm's colour
        algo = r.split(" [")[0]
        if algo in ALGO_ORDER and ALGO_ORDER.index(algo) not in taken:
            out[r] = palette[ALGO_ORDER.index(algo)]
            taken.add(ALGO_ORDER.index(algo))
    free = [i for i in range(len(ALGO_ORDER), len(palette))] + [i for i in range(len(ALGO_ORDER)) if i not in taken]
    for r in rows:
        if r not in out:
            out[r] = palette[free.pop(0)] if free else (0.3, 0.3, 0.3)
    return out


def _save(fig, stem: Path) -> list[Path]:
    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(f"{stem}.png", dpi=130, bbox_inches="tight")
        fig.savefig(f"{stem}.pdf", bbox_inches="tight")
    plt.close(fig)
    return [Path(f"{stem}.png"), Path(f"{stem}.pdf")]


def interval_plot(point: dict, ci: dict, rows: list, metric_names, stem: Path, title: str, palette: dict):
    """IQM / median / mean / optimality gap with 95% CIs (rliable's ``plot_interval_estimates``)."""
    _plt()
    from rliable import plot_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, _ = plot_utils.plot_interval_estimates(
            {r: np.asarray(point[r]) for r in rows},
            {r: np.asarray(ci[r]) for r in rows},
            metric_names=[m + (" (lower is better)" if "gap" in m.lower() else "") for m in metric_names],
            algorithms=list(rows),
            colors=palette,
            xlabel="normalised score / 100 (95% stratified-bootstrap CI)",
            subfigure_width=3.6,
            row_height=0.6,
            xlabel_y_coordinate=-0.45 / max(1, len(rows)) - 0.1,
        )
    fig.suptitle(title, y=1.0 + 0.5 / max(1, len(rows)))
    return _save(fig, stem)


def profile_plot(profiles: dict, cis: dict, taus: np.ndarray, stem: Path, title: str, palette: dict):
    """Performance profiles (score distributions) with CI bands (rliable's ``plot_performance_profiles``)."""
    plt = _plt()
    from rliable import plot_utils

    fig, ax = plt.subplots(figsize=(7, 4.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot_utils.plot_performance_profiles(
            profiles,
            taus,
            performance_profile_cis=cis,
            colors={r: palette[r] for r in profiles},
            xlabel=r"Normalized score / 100 ($\tau$)",
            ylabel=r"Fraction of runs with score $> \tau$",
            ax=ax,
            labelsize="large",
            ticklabelsize="medium",
        )
    ax.legend(loc="upper right")
    ax.set_title(title)
    return _save(fig, stem)


def poi_plot(point: dict, ci: dict, stem: Path, title: str, palette: dict):
    """Probability of improvement P(X > Y) with CIs (rliable's ``plot_probability_of_improvement``); each bar in
    the colour of its X."""
    plt = _plt()
    from rliable import plot_utils

    fig, ax = plt.subplots(figsize=(5, 0.6 * len(point) + 1.2))
    pe = {k: np.atleast_1d(np.squeeze(v)) for k, v in point.items()}
    ie = {k: np.asarray(v).reshape(2, -1) for k, v in ci.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot_utils.plot_probability_of_improvement(
            pe,
            ie,
            ax=ax,
            colors=[palette[k.split(",")[0]] for k in pe],
            labelsize="medium",
            ticklabelsize="medium",
            xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
            xlabel="P(X > Y)",
            left_ylabel="X",
            right_ylabel="Y",
        )
    ax.set_xlim(0, 1)
    ax.set_title(title, pad=22)
    return _save(fig, stem)


def curves_plot(panels: dict, stem: Path, title: str, palette: dict):
    """Learning curves, one panel per entry of ``panels`` ({panel title: {row: Curve}}): IQM over seeds with 95%
    bootstrap bands against gradient steps (rliable's ``plot_sample_efficiency_curve``, each row at its own
    evaluation steps); the online phase is shaded from the end of the offline phase."""
    plt = _plt()
    from rliable import plot_utils

    n = len(panels)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    seen = {}
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        online = [c.online_from for c in curves.values() if c.online_from is not None]
        if online:
            start = min(online)
            end = max(max(float(c.steps.max()) for c in curves.values()), start)
            ax.axvspan(start, end, color="0.92", zorder=0)
            ax.axvline(start, color="0.4", linestyle="--", linewidth=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r, c in curves.items():
                plot_utils.plot_sample_efficiency_curve(
                    c.steps,
                    {r: c.point},
                    {r: np.stack([c.low, c.high])},
                    algorithms=[r],
                    colors=palette,
                    ax=ax,
                    xlabel="gradient steps",
                    ylabel="normalised score",
                    labelsize="medium",
                    ticklabelsize="small",
                    marker="o" if len(c.steps) < 12 else "",
                    linewidth=1.8,
                )
        if online:
            ax.text(min(online), ax.get_ylim()[1], " online", va="top", ha="left", fontsize=9, color="0.3")
        ax.set_title(name, fontsize=11)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        for h, lb in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lb, h)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.legend(
        list(seen.values()),
        list(seen),
        loc="upper center",
        ncol=min(len(seen), 5),
        bbox_to_anchor=(0.5, 1.0 + 0.04 / nrows),
        frameon=False,
    )
    fig.suptitle(title, y=1.0 + 0.1 / nrows)
    fig.tight_layout()
    return _save(fig, stem)
