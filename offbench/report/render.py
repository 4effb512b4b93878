"""One report table (:class:`Table`: the cells as a pandas DataFrame, notes, bold cells, rules) and its renderings
by pandas: CSV (``to_csv`` of a tidy frame), Markdown (``to_markdown``, via tabulate), LaTeX (``Styler.to_latex``)
and HTML (``Styler.to_html``); with the number formats every table shares (mean ± std over seeds) and file names."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd

TEX_SYMBOLS = (
    ("±", r"$\pm$"),
    ("→", r"$\rightarrow$"),
    ("≥", r"$\geq$"),
    ("×", r"$\times$"),
    ("†", r"$^\dagger$"),
    ("✓", r"$\checkmark$"),
    ("–", "--"),
    ("·", r"$\cdot$"),
    ("…", r"\ldots{}"),
)


def tex_escape(s: str) -> str:
    """LaTeX escape of a caption or note (cells are escaped by ``Styler.format(escape="latex")``)."""
    s = str(s)
    for a, b in (
        ("\\", "\\textbackslash{}"),
        ("&", "\\&"),
        ("%", "\\%"),
        ("_", "\\_"),
        ("#", "\\#"),
        ("$", "\\$"),
        ("{", "\\{"),
        ("}", "\\}"),
        ("~", "\\textasciitilde{}"),
        ("^", "\\^{}"),
    ):
        s = s.replace(a, b)
    return s


@dataclasses.dataclass
class Table:
    name: str  # file stem
    title: str
    frame: pd.DataFrame  # the cells as shown (strings)
    notes: list = dataclasses.field(default_factory=list)
    tidy: pd.DataFrame | None = None  # the CSV (numbers as numbers); default: the cells
    bold: set = dataclasses.field(default_factory=set)  # (row, column) positions
    rules: set = dataclasses.field(default_factory=set)  # row positions with a rule above them
    numeric: bool = True  # right-align every column but the first

    def _css(self, rules: bool) -> pd.DataFrame:
        css = pd.DataFrame("", index=self.frame.index, columns=self.frame.columns)
        for i, j in self.bold:
            css.iat[i, j] = "font-weight: bold;"
        if rules:
            for i in self.rules:
                if 0 < i < len(css):
                    css.iloc[i] = css.iloc[i] + "border-top: 2px solid #333;"
        return css

    def _styler(self, rules: bool):
        frame = self.frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        from pandas.io.formats.style import Styler

        sty = Styler(frame, uuid=self.name, cell_ids=False)
        css = self._css(rules)
        css.columns = frame.columns
        return sty.hide(axis="index").apply(lambda _: css, axis=None)

    def md(self, heading: str | None = "###") -> str:
        shown = self.frame.astype(str).map(lambda v: v.replace("|", "\\|"))
        for i, j in self.bold:
            if shown.iat[i, j]:
                shown.iat[i, j] = f"**{shown.iat[i, j]}**"
        align = ["left"] + ["right" if self.numeric else "left"] * (shown.shape[1] - 1)
        body = shown.to_markdown(index=False, colalign=align) if len(shown) else "(none)"
        title = f"{heading} {self.title}" if heading else f"**{self.title}**"
        return "\n".join([title, "", body, ""] + [f"- {n}" for n in self.notes] + ([""] if self.notes else []))

    def html(self) -> str:
        notes = "".join(f"<li>{_esc(n)}</li>" for n in self.notes)
        notes = f"<ul class=notes>{notes}</ul>" if notes else ""
        if not len(self.frame):
            return f"<p class=caption>{_esc(self.title)}</p>{notes}"
        sty = self._styler(rules=True).format(escape="html").set_caption(_esc(self.title))
        return sty.to_html() + notes  # <table id="T_{name}">

    def tex(self) -> str:
        sty = self._styler(rules=False).format(escape="latex")
        spec = "l" + ("r" if self.numeric else "l") * (self.frame.shape[1] - 1)
        text = sty.to_latex(
            caption=tex_escape(self.title),
            position="t",
            position_float="centering",
            hrules=True,
            column_format=spec,
            convert_css=True,
            environment="table",
        )
        lines = text.splitlines()
        first = lines.index(r"\midrule") + 1  # the rows follow the header's rule, one per line
        for i in sorted(self.rules, reverse=True):
            if 0 < i < len(self.frame):
                lines.insert(first + i, r"\midrule")
        if self.notes:
            lines.insert(len(lines) - 1, r"\par\footnotesize " + " ".join(tex_escape(n) for n in self.notes))
        text = "\n".join(lines) + "\n"
        for a, b in TEX_SYMBOLS:
            text = text.replace(a, b)
        return text

    def csv(self) -> str:
        frame = self.tidy if self.tidy is not None else self.frame
        return frame.to_csv(index=False) if len(frame.columns) else "empty\n"


def _esc(s) -> str:
    import html

    return html.escape(str(s))


def frame(columns, rows) -> pd.DataFrame:
    return (
        pd.DataFrame([list(r) for r in rows], columns=list(columns), dtype=object)
        if rows
        else pd.DataFrame(columns=list(columns), dtype=object)
    )


def mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (ddof=1, pandas' default; NaN for a single seed)."""
    x = np.asarray(x, np.float64)
    return float(np.mean(x)), (float(np.std(x, ddof=1)) if len(x) > 1 else float("nan"))


def pm(m: float, sd: float, d: int = 1) -> str:
    return f"{m:.{d}f} ± {sd:.{d}f}" if math.isfinite(sd) else f"{m:.{d}f} (1 seed)"


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")
