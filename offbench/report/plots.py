"""Figures of ``offbench report`` (matplotlib, Agg backend; rliable's plotting helpers). Each figure is
written as ``STEM.png`` and ``STEM.pdf``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10})
    return plt


def _colors(names):
    plt = _plt()
    cycle = plt.get_cmap("tab10")
    return {n: cycle(i % 10) for i, n in enumerate(names)}


def _save(fig, stem: Path) -> None:
    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(f"{stem}.png", dpi=130, bbox_inches="tight")
        fig.savefig(f"{stem}.pdf", bbox_inches="tight")
    plt.close(fig)


def interval_plot(point: dict, ci: dict, algos: list, metric_names, stem: Path, title: str) -> None:
    """IQM / median / mean / optimality gap with 95% CIs: one panel per metric, one bar (the CI) per
    algorithm with the point estimate marked (the layout of rliable's ``plot_interval_estimates``)."""
    plt = _plt()
    colors = _colors(algos)
    metric_names = list(metric_names)
    fig, axes = plt.subplots(1, len(metric_names), figsize=(3.3 * len(metric_names), 0.45 * len(algos) + 1.3),
                             sharey=True)
    for m, (ax, name) in enumerate(zip(np.atleast_1d(axes), metric_names)):
        for i, a in enumerate(algos):
            lo, hi = float(ci[a][0][m]), float(ci[a][1][m])
            ax.barh(i, max(hi - lo, 1e-3), left=lo, height=0.6, color=colors[a], alpha=0.75)
            ax.vlines(float(point[a][m]), i - 0.3, i + 0.3, color="k", linewidth=1.5)
        ax.set_title(name + (" (lower is better)" if "gap" in name.lower() else ""), fontsize=11)
        ax.set_yticks(range(len(algos)), algos)
        ax.grid(axis="x", alpha=0.3)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    np.atleast_1d(axes)[0].invert_yaxis()
    fig.supxlabel("normalised score / 100 (95% stratified-bootstrap CI; black: point estimate)", fontsize=10)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    _save(fig, stem)


def profile_plot(profiles: dict, cis: dict, taus: np.ndarray, stem: Path, title: str) -> None:
    """Performance profiles (score distributions) with CI bands (rliable's ``plot_performance_profiles``)."""
    plt = _plt()
    from rliable import plot_utils

    fig, ax = plt.subplots(figsize=(7, 4.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, colors=_colors(list(profiles)),
                                             xlabel=r"Normalized score / 100 ($\tau$)",
                                             ylabel=r"Fraction of runs with score $> \tau$", ax=ax,
                                             labelsize="large", ticklabelsize="medium")
    ax.legend(loc="upper right")
    ax.set_title(title)
    _save(fig, stem)


def poi_plot(point: dict, ci: dict, stem: Path, title: str) -> None:
    """Probability of improvement P(X > Y) with CIs (rliable's ``plot_probability_of_improvement``)."""
    plt = _plt()
    from rliable import plot_utils

    n = len(point)
    fig, ax = plt.subplots(figsize=(5, 0.6 * n + 1.2))
    pe = {k: np.atleast_1d(np.squeeze(v)) for k, v in point.items()}
    ie = {k: np.asarray(v).reshape(2, -1) for k, v in ci.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot_utils.plot_probability_of_improvement(pe, ie, ax=ax, colors=list(_colors(list(pe)).values()),
                                                   labelsize="medium", ticklabelsize="medium",
                                                   xticks=[0.0, 0.25, 0.5, 0.75, 1.0], xlabel="P(X > Y)",
                                                   left_ylabel="Algorithm X", right_ylabel="Algorithm Y")
    ax.set_xlim(0, 1)
    ax.set_title(title, pad=22)
    _save(fig, stem)


def curves_plot(panels: dict, stem: Path, title: str) -> None:
    """Learning curves: one panel per entry of ``panels`` ({panel title: {algo: Curve}}): IQM over seeds with
    95% bootstrap bands against gradient steps; the online fine-tuning phase is shaded."""
    plt = _plt()
    algos = list(dict.fromkeys(a for p in panels.values() for a in p))
    colors = _colors(algos)
    n = len(panels)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        online = [c.online_from for c in curves.values() if c.online_from is not None]
        for a, c in curves.items():
            x = c.steps
            ax.plot(x, c.point, color=colors[a], label=a, marker="o" if len(x) < 3 else None)
            ax.fill_between(x, c.low, c.high, color=colors[a], alpha=0.2, linewidth=0)
        if online:
            start = min(online)
            end = max(c.steps.max() for c in curves.values())
            ax.axvspan(start, end, color="0.9", zorder=0)
            ax.axvline(start, color="0.4", linestyle="--", linewidth=1)
            ax.text(start, ax.get_ylim()[1], " online", va="top", ha="left", fontsize=9, color="0.3")
        ax.set_title(name)
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalised score")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in list(axes.flat)[1:n]:
        h, lb = ax.get_legend_handles_labels()
        for k, v in zip(lb, h):
            seen.setdefault(k, v)
    fig.legend(list(seen.values()), list(seen), loc="upper center", ncol=min(len(seen), 5),
               bbox_to_anchor=(0.5, 1.0 + 0.04 / nrows), frameon=False)
    fig.suptitle(title, y=1.0 + 0.1 / nrows)
    fig.tight_layout()
    _save(fig, stem)
