"""Run records -> report cells. A cell pools only comparable runs (issue 19.1): the same algorithm (a
fine-tuning run is its own row), dataset and its data (original, or rebuilt by one recipe version; one data
fingerprint), config (``config_hash``), variant, run length (steps, online steps), evaluation (episodes,
backend) and preset. Whatever differs is a separate row, named by what differs; two records of one seed in one
cell are an error. A field that records written before it existed lack counts as its own value (None).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

from offbench.data.suites import report_rank
from offbench.errors import OffbenchError
from offbench.records.record import is_finished
from offbench.records.store import read_records
from offbench.report.issues import issue, run_issues

PAPER_STEPS = 1_000_000  # the IQL paper's and CORL's offline run length


# --------------------------------------------------------------------------------------------------
# What a record is a run of


def algo_label(rec: dict) -> str:
    """Fine-tuned runs (offline then online) are their own row, never pooled with offline-only runs."""
    return f"{rec.get('algo')}+online" if rec.get("finetune") else str(rec.get("algo"))


def eval_settings(rec: dict) -> tuple:
    """(episodes, backend); ``eval`` is this wave's record field, ``eval_episodes`` the older one."""
    ev = rec.get("eval") if isinstance(rec.get("eval"), dict) else {}
    return ev.get("episodes", rec.get("eval_episodes")), ev.get("backend")


def run_length(rec: dict) -> tuple:
    """(offline steps, online steps); a fine-tuning run's offline length is its ``offline_steps``."""
    if rec.get("finetune"):
        return rec.get("offline_steps", rec.get("steps")), rec.get("online_steps")
    return rec.get("steps"), None


def record_hash(rec: dict) -> str | None:
    if rec.get("config_hash"):
        return str(rec["config_hash"])
    if isinstance(rec.get("config"), dict):  # records before config_hash was stored: the same function of the config
        from offbench.config import config_hash

        return config_hash(rec["config"])
    return None


def data_identity(rec: dict) -> tuple:
    """(rebuilt, label, recipe, recipe version) of the data a record was trained on."""
    data = rec.get("data") or {}
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    rebuilt = bool(data.get("rebuilt"))
    label = str(data.get("label") or "")
    label = (label if label.startswith("rebuilt") else "rebuilt") if rebuilt else "original"
    version = data.get("recipe_version", meta.get("recipe_version"))
    recipe = data.get("recipe", meta.get("recipe"))
    return rebuilt, label, recipe if rebuilt else None, version if rebuilt else None


# the row identity shared across datasets, and what must also agree within one dataset
ROW_FIELDS = ("steps", "online_steps", "backend", "preset")
CELL_FIELDS = ("config_hash", "episodes", "fingerprint")  # fingerprint: of the data (another size, another file)


# how a row names each field that tells it apart: (with the field's value, for records without the field)
QUALIFIERS = {
    "steps": ("{} steps", "steps ?"),
    "online_steps": ("{} online steps", "online steps ?"),
    "backend": ("{} eval", "eval backend ?"),
    "preset": ("preset {}", "no preset"),
    "config_hash": ("config {}", "config ?"),
    "episodes": ("{} episodes", "episodes ?"),
    "fingerprint": ("data {:.8}", "data ?"),  # the fingerprint's first 8 characters
}


def _qualifier(field: str, value) -> str:
    named, unknown = QUALIFIERS[field]  # an unknown field is a KeyError
    return named.format(str(value)) if value is not None else unknown


@dataclasses.dataclass
class Cell:
    """All records of one comparable (dataset, row)."""

    suite: str
    dataset: str
    rebuilt: bool
    data_label: str
    recipe: str | None
    recipe_version: int | None
    algo: str  # the algorithm's registry name
    finetune: bool
    variant: str | None
    steps: int | None
    online_steps: int | None
    episodes: int | None
    backend: str | None
    preset: str | None
    config_hash: str | None
    fingerprint: str | None = None
    row: str = ""  # the row label, e.g. "iql", "iql+online", "iql [2000 steps]"
    records: list = dataclasses.field(default_factory=list)

    @property
    def task(self) -> str:
        """The dataset's label: rebuilt data says so, with its recipe version."""
        if not self.rebuilt:
            return self.dataset
        return f"{self.dataset} ({self.data_label}" + (
            f", recipe v{self.recipe_version})" if self.recipe_version is not None else ")"
        )

    @property
    def key(self) -> tuple:
        return (self.suite, self.task, self.row)

    @property
    def finished(self) -> list[dict]:
        """Records that count (``records.record.is_finished``), sorted by seed."""
        return sorted((r for r in self.records if is_finished(r)), key=lambda r: r.get("seed", 0))

    @property
    def scores(self):
        import numpy as np

        return np.array([float(r["final_score"]) for r in self.finished], dtype=np.float64)

    @property
    def seeds(self) -> list:
        return sorted(r.get("seed") for r in self.records if r.get("seed") is not None)

    @property
    def label_algo(self) -> str:
        return f"{self.algo}+online" if self.finetune else self.algo


def _cell_of(rec: dict) -> Cell:
    rebuilt, label, recipe, version = data_identity(rec)
    steps, online = run_length(rec)
    episodes, backend = eval_settings(rec)
    return Cell(
        str(rec.get("suite")),
        str(rec.get("dataset")),
        rebuilt,
        label,
        recipe,
        version,
        str(rec.get("algo")),
        bool(rec.get("finetune")),
        rec.get("variant"),
        steps,
        online,
        episodes,
        backend,
        rec.get("preset"),
        record_hash(rec),
        (rec.get("data") or {}).get("fingerprint"),
    )


def _identity(c: Cell) -> tuple:
    return (
        c.suite,
        c.dataset,
        c.rebuilt,
        c.data_label,
        c.recipe,
        c.recipe_version,
        c.algo,
        c.finetune,
        c.variant,
        *(getattr(c, f) for f in ROW_FIELDS),
        *(getattr(c, f) for f in CELL_FIELDS),
    )


def label_rows(cells: list[Cell]) -> None:
    """Name each cell's row: the algorithm (``+online`` for fine-tuning), its variant unless "default", and
    whatever else tells apart runs that would otherwise share the name."""
    by_algo = defaultdict(list)
    for c in cells:
        by_algo[c.label_algo].append(c)
    for group in by_algo.values():
        unnamed = {c.variant for c in group} >= {None, "default"}  # old records beside named "default" ones
        by_name = defaultdict(list)
        for c in group:
            by_name[c.variant].append(c)
        for same_name in by_name.values():
            varying = [f for f in ROW_FIELDS if len({getattr(c, f) for c in same_name}) > 1]
            per_task = defaultdict(list)
            for c in same_name:
                per_task[(c.suite, c.task, *(getattr(c, f) for f in ROW_FIELDS))].append(c)
            for same in per_task.values():
                inner = [f for f in CELL_FIELDS if len({getattr(c, f) for c in same}) > 1]
                for c in same:
                    parts = (
                        [c.variant]
                        if c.variant not in (None, "default")
                        else (["no variant name"] if unnamed and c.variant is None else [])
                    )
                    parts += [_qualifier(f, getattr(c, f)) for f in varying + inner]
                    c.row = c.label_algo + (f" [{', '.join(str(p) for p in parts)}]" if parts else "")


def check_duplicates(cells: list[Cell]) -> None:
    for c in cells:
        seen = {}
        for r in c.records:
            s = r.get("seed")
            if s in seen:
                raise OffbenchError(
                    f"seed {s} of {c.row} on {c.task} is recorded twice ({seen[s]} and "
                    f"{r.get('path')}); remove one, or report one folder with --results"
                )
            seen[s] = r.get("path")


# --------------------------------------------------------------------------------------------------
# Collecting


def _inside(path: Path, folder: Path | None) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# folders of a results folder that hold no run of the researcher's own: left out, and said so, unless --results is one
NOT_OWN_RUNS = {"validation": "written by `offbench validate`", "reference": "in the published numbers' folder"}


def _not_own_runs(results: Path, recs: list[dict]) -> tuple[list[dict], list[dict]]:
    issues = []
    for name, what in NOT_OWN_RUNS.items():
        folder = results / name
        inside = [r for r in recs if _inside(Path(r["path"]), folder)]
        if inside:
            tops = {(Path(r["path"]).resolve().parent.relative_to(folder.resolve()).parts or ("",))[0] for r in inside}
            where = " or ".join(f"--results {folder / t}" for t in sorted(tops))
            n = f"{len(inside)} record" + ("s" if len(inside) > 1 else "")
            detail = f"{n} {what}, not read with {results}; report them with {where}"
            issues.append(issue("not included", detail=detail, path=str(folder)))
            recs = [r for r in recs if not _inside(Path(r["path"]), folder)]
    return recs, issues


def collect(results: Path, suites=(), algos=(), datasets=(), skip=()) -> tuple[dict, list[dict]]:
    """Cells keyed by (suite, dataset label, row) and the runs not averaged (unreadable, unfinished, ...)."""
    if not results.is_dir():
        raise OffbenchError(
            f"results folder {results} does not exist; pass --results DIR (where `offbench run` wrote its records)"
        )
    recs = [r for r in read_records(results) if not any(_inside(Path(r["path"]), s) for s in skip)]
    recs, left_out = _not_own_runs(results, recs)
    if not recs:
        raise OffbenchError(
            f"no run records under {results}"
            + (f" (not read: {'; '.join(i['detail'] for i in left_out)})" if left_out else "")
            + "; run e.g. `offbench run --algo iql --suite locomotion --dataset NAME` first, or pass --results DIR"
        )
    bad = [
        issue("unreadable", path=r["path"], detail=r.get("error", "")) for r in recs if r.get("status") == "unreadable"
    ]
    issues = left_out + bad
    recs = [r for r in recs if r.get("status") != "unreadable"]
    if not recs:
        raise OffbenchError(
            f"no readable run record under {results} ({bad[0]['path']}: {bad[0]['detail']}); "
            "rerun `offbench run` for those runs"
        )
    present = {k: sorted({str(r.get(k)) for r in recs}) for k in ("suite", "algo", "dataset")}
    for name, wanted, key in (
        ("--suite", suites, "suite"),
        ("--algos", algos, "algo"),
        ("--datasets", datasets, "dataset"),
    ):
        unknown = [w for w in wanted if w not in present[key]]
        if unknown:
            raise OffbenchError(
                f"{name} {', '.join(unknown)}: no records under {results}; records exist for {', '.join(present[key])}"
            )
    recs = [
        r
        for r in recs
        if (not suites or r.get("suite") in suites)
        and (not algos or r.get("algo") in algos)
        and (not datasets or r.get("dataset") in datasets)
    ]
    if not recs:
        raise OffbenchError("no records match the --suite/--algos/--datasets filters together; relax one of them")
    by_id: dict[tuple, Cell] = {}
    for r in recs:
        c = _cell_of(r)
        by_id.setdefault(_identity(c), c).records.append(r)
    cells = list(by_id.values())
    label_rows(cells)
    check_duplicates(cells)
    groups = {}
    for c in cells:
        if c.key in groups:  # cannot happen: label_rows names every difference
            raise OffbenchError(f"two kinds of runs of {c.row} on {c.task} share one row; report them apart")
        groups[c.key] = c
    return groups, issues + run_issues(groups)


def suite_sort_key(suite: str):
    return (report_rank(suite), suite)  # each suite's registration gives its rank (Suite.report_rank)


def row_sort_key(row: str):
    """IQL first (the focus), offline before fine-tuning, then by name."""
    base = row.split(" [")[0]
    return (base.replace("+online", "") != "iql", "+online" in base, base, row)


def ordered(groups: dict):
    """(suites, rows, {suite: dataset labels}) in report order."""
    suites = sorted({c.suite for c in groups.values()}, key=suite_sort_key)
    rows = sorted({c.row for c in groups.values()}, key=row_sort_key)
    tasks = {
        s: sorted({c.task for c in groups.values() if c.suite == s}, key=lambda t: (t != t.split(" (rebuilt")[0], t))
        for s in suites
    }
    return suites, rows, tasks


def row_cell(groups: dict, row: str) -> Cell | None:
    """Any cell of a row (they share algorithm, variant, run length and evaluation backend)."""
    return next((c for c in groups.values() if c.row == row), None)
