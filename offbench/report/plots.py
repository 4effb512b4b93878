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
    """One colour per row for every figure: a registered algorithm's plain row has its fixed colour (matplotlib's
    tab10, whose first eight hues stay apart from each other, unlike seaborn's colorblind palette, where bc's
    orange and awr's vermillion, awac's and td3bc's pinks were hard to tell apart); other rows (variants,
    fine-tuning, other algorithms) take the next free colours in order. Learning curves also give each row its
    own marker (:data:`MARKERS`)."""
    import seaborn as sns

    palette = [tuple(c) for c in sns.color_palette("tab10", 10)] + [tuple(c) for c in sns.color_palette("tab20", 20)]
    palette = palette[:10] + palette[11::2]  # tab20's darker hues repeat tab10's; keep its lighter ones
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


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def step_label(x: float, _=None) -> str:
    """Gradient steps as people write them: 500, 10k, 2.5k, 1M."""
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.0f}"


def steps_axis(ax, steps) -> None:
    """An x axis of gradient steps labelled 10k / 1M; with few distinct steps (a one- or two-point curve) the
    ticks are exactly those steps and the axis spans them with a margin, never a 0.96-1.04 range."""
    from matplotlib.ticker import FuncFormatter

    steps = sorted({float(x) for x in steps})
    if 0 < len(steps) <= 3:
        ax.set_xticks(steps)
        pad = max(steps[-1] - steps[0], steps[-1]) * 0.15 or 1.0
        ax.set_xlim(steps[0] - pad, steps[-1] + pad)
    ax.xaxis.set_major_formatter(FuncFormatter(step_label))


def _save(fig, stem: Path) -> list[Path]:
    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(f"{stem}.png", dpi=130, bbox_inches="tight")
        fig.savefig(f"{stem}.pdf", bbox_inches="tight")
    plt.close(fig)
    return [Path(f"{stem}.png"), Path(f"{stem}.pdf")]


def interval_plot(point: dict, ci: dict, rows: list, metric_names, stem: Path, title: str, palette: dict):
    """IQM / median / mean / optimality gap with 95% CIs (rliable's ``plot_interval_estimates``). The layout is
    redone after rliable's (its fixed offsets overlap the title, panel titles and labels for one or two rows):
    at least 2.6 inches tall, three ticks per panel, title and axis label in their own margins."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    from rliable import plot_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, axes = plot_utils.plot_interval_estimates(
            {r: np.asarray(point[r]) for r in rows},
            {r: np.asarray(ci[r]) for r in rows},
            metric_names=[m + (" (lower is better)" if "gap" in m.lower() else "") for m in metric_names],
            algorithms=list(rows),
            colors=palette,
            xlabel="",
            subfigure_width=3.8,
            row_height=max(0.55, 2.6 / max(1, len(rows))),
        )
    for ax in np.atleast_1d(axes):
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.tick_params(axis="x", labelsize=12)
        ax.title.set_fontsize(13)
    plt.setp(np.atleast_1d(axes)[0].get_yticklabels(), fontsize=12)
    fig.supxlabel("normalised score / 100 (95% stratified-bootstrap CI)", fontsize=12)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the axes, never over a curve
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
            for k, (r, c) in enumerate(curves.items()):
                x = np.asarray(c.steps, np.float64)
                if len(x) == 1:  # one evaluation: a point with its CI as an error bar, rows dodged apart by 2%
                    x = x * (1 + 0.02 * (k - (len(curves) - 1) / 2))
                    yerr = np.abs(np.array([[c.point[0] - c.low[0]], [c.high[0] - c.point[0]]]))
                    ax.errorbar(x, c.point, yerr=yerr, fmt="none", ecolor=palette[r], capsize=4)
                plot_utils.plot_sample_efficiency_curve(
                    x,
                    {r: c.point},
                    {r: np.stack([c.low, c.high])},
                    algorithms=[r],
                    colors=palette,
                    ax=ax,
                    xlabel="gradient steps",
                    ylabel="normalised score",
                    labelsize="medium",
                    ticklabelsize="small",
                    marker=MARKERS[list(palette).index(r) % len(MARKERS)] if len(c.steps) < 12 else "",
                    linewidth=1.8,
                )
        if online:
            ax.text(min(online), ax.get_ylim()[1], " online", va="top", ha="left", fontsize=9, color="0.3")
        ax.set_title(name, fontsize=11)
        steps_axis(ax, [x for c in curves.values() for x in c.steps])
        for h, lb in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lb, h)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _head(fig, title, list(seen.values()), list(seen), 5)
    return _save(fig, stem)


def _head(fig, title: str, handles, labels, ncol: int) -> None:
    """The title, then the legend under it, then the panels: each in its own band (sized in inches), so neither
    covers a panel's title or the other, whatever the number of rows."""
    height = fig.get_figheight()
    lines = -(-len(labels) // ncol) if labels else 0
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.45 + 0.27 * lines) / height))
    fig.suptitle(title, y=1 - 0.06 / height, va="top", fontsize=13)
    if labels:
        fig.legend(
            handles, labels, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 1 - 0.4 / height), frameon=False
        )


def metrics_plot(panels: dict, stem: Path, title: str, palette: dict):
    """Training metrics over gradient steps from the runs' logs ({metric: {row: (steps, values)}}): one panel
    per metric, a line per row (mean over seeds and datasets); losses on a log scale when all positive."""
    plt = _plt()
    n = len(panels)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (metric, lines) in zip(axes.flat, panels.items()):
        for r, (steps, values) in lines.items():
            marker = MARKERS[list(palette).index(r) % len(MARKERS)] if r in palette and len(steps) < 12 else ""
            ax.plot(steps, values, color=palette.get(r), label=r, marker=marker, linewidth=1.6)
        if metric.endswith("loss") and all((v > 0).all() for _, v in lines.values()):
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_yscale("log")  # ticks at 1, 2, 5 x 10^k written plainly (0.2, 0.5, 1), no minor labels
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(metric, fontsize=11)
        ax.set_xlabel("gradient steps")
        steps_axis(ax, [x for steps, _ in lines.values() for x in steps])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    seen = {}
    for ax in axes.flat:
        for h, lb in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lb, h)
    _head(fig, title, list(seen.values()), list(seen), 5)
    return _save(fig, stem)
