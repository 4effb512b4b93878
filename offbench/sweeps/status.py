"""``offbench status``: done / running / failed / diverged / pending per run directory of a results folder
(a sweep's or ``offbench run``'s), with elapsed time and last score."""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from offbench.errors import OffbenchError

SWEEPS_DIR = ".sweeps"
PREVIOUS_LAYOUT = (  # results/<suite>/<dataset>/<algo>/seed_<s>.json, as `offbench run` wrote them before variants
    "previous layout (no variant directory): `offbench run` neither resumes it nor adds to it"
)


def _fmt_s(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _fmt_score(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _last_line(text) -> str:
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "?"


# --------------------------------------------------------------------------------------------------
# Status


def _previous_layout(record_path: Path) -> bool:
    """A record of the layout before variant directories (``<suite>/<dataset>/<algo>/seed_<s>.json``, commit
    a056776): it has no ``variant`` (every record since has one; offbench.records.record.RunRecord)."""
    from offbench.records.jsonio import read_json
    from offbench.records.record import RunRecord

    try:
        return RunRecord.from_json(read_json(record_path)).variant is None
    except (OSError, ValueError, TypeError, AttributeError):
        return True


def _with_resume(command) -> str:
    """A record's ``command`` (``offbench run ...``) as the command that continues it."""
    words = [w for w in str(command or "").split() if w not in ("--overwrite", "--resume")]
    if not words or "run" not in words:
        return "`offbench run ... --resume` (the same options)"
    return "`offbench " + " ".join(words[words.index("run") :]) + " --resume`"


def _unfinished(path: Path, recs: list[dict]) -> tuple[str, str]:
    """A run directory that is neither running nor done: ``damaged`` (an unreadable record or checkpoint),
    ``resumable`` (a checkpoint to continue from), or ``pending`` (nothing to continue: it starts from step 0)."""
    from offbench.records import checkpoint
    from offbench.records.store import CHECKPOINTS

    names = sorted(p.name for p in path.glob("seed_*.json"))  # in the order collect_status read them
    bad = [name for name, r in zip(names, recs) if r.get("status") == "unreadable"]
    for ck in sorted(path.glob(CHECKPOINTS)):
        what = checkpoint.damage(ck)
        if what:
            return "damaged", f"checkpoint {ck.name}: {what}; --overwrite starts the run over"
    if bad:
        return (
            "damaged",
            f"{', '.join(bad)} cannot be read; --resume rewrites it from the checkpoint, --overwrite starts over",
        )
    live = [r for r in recs if r.get("status") not in (None, "finished")]
    resumable = [ck for ck in path.glob(CHECKPOINTS) if checkpoint.exists(ck)]
    if live and resumable:
        info = checkpoint.read_info(resumable[0])
        return "resumable", f"interrupted at step {info.get('step')}; {_with_resume(live[0].get('command'))}"
    if live:
        return "pending", "interrupted before its first checkpoint; the same command with --resume starts it again"
    return "pending", ""


def collect_status(results: str | Path) -> list[dict]:
    """One row per run directory (and per planned job not started yet): done, diverged, running, failed,
    pending. Done means every seed is a finished run (``offbench.records.record.is_finished``); diverged, that
    every seed ran to its end and some diverged."""
    from offbench.records.jsonio import read_json
    from offbench.records.lock import is_locked
    from offbench.records.record import is_finished
    from offbench.records.store import RUN_DIRS, run_dir_parts
    from offbench.sweeps.jobs import STATE_NAME, mean_score, read_state

    results = Path(results)
    planned: dict[str, dict] = {}
    sweep_files = sorted((results / SWEEPS_DIR).glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in sweep_files:  # later sweeps override earlier plans of the same run directory
        try:
            doc = read_json(path)
        except (OSError, ValueError):
            continue
        for j in doc.get("jobs", []):
            planned[str(Path(j["run_dir"]).resolve())] = j
    dirs = {str(p.parent.resolve()) for p in results.glob(f"{RUN_DIRS}/seed_*.json")}  # suite/dataset/algo/variant
    dirs |= {str(p.parent.resolve()) for p in results.glob(f"{RUN_DIRS}/{STATE_NAME}")}
    dirs |= set(planned)
    previous = {str(p.parent.resolve()) for p in results.glob("*/*/*/seed_*.json") if _previous_layout(p)}
    dirs |= previous
    rows = []
    now = time.time()
    for d in sorted(dirs):
        path = Path(d)
        recs = []
        for p in sorted(path.glob("seed_*.json")):
            try:
                recs.append(read_json(p))
            except (OSError, ValueError):
                recs.append({"status": "unreadable"})
        plan_job = planned.get(d, {})
        state = read_state(path)
        seeds = plan_job.get("seeds") or sorted(r.get("seed") for r in recs if isinstance(r.get("seed"), int))
        by_seed = {r.get("seed"): r for r in recs}
        mine = [by_seed.get(s) for s in seeds] if seeds else recs
        steps = plan_job.get("steps", recs[0].get("steps") if recs else None)
        ran = bool(mine) and all(
            r and r.get("status") == "finished" and (steps is None or r.get("steps") == steps) for r in mine
        )
        diverged = [r.get("seed") for r in mine if r and r.get("status") == "finished" and not is_finished(r)]
        if is_locked(path):
            status = "running"
        elif ran and diverged:
            status = "diverged"
        elif ran:
            status = "done"
        elif state.get("status") == "failed":
            status = "failed"
        else:
            status, note = _unfinished(path, recs)
        step = max((r.get("step", 0) for r in mine if r), default=None)
        if status == "running" and state.get("started_at"):
            elapsed = now - state["started_at"]
        elif state.get("elapsed_s") and state.get("status") in ("done", "failed", "interrupted"):
            elapsed = state["elapsed_s"]
        else:
            elapsed = max((r.get("elapsed_s", 0.0) for r in mine if r), default=None)
        if status not in ("pending", "resumable", "damaged"):
            note = ""
        if status == "failed":
            note = _last_line(state.get("error"))
        elif diverged:
            note = f"seeds {diverged} diverged (no final score)"
        where = run_dir_parts(results, path, previous=d in previous)  # offbench.records.store.run_dir, inverted
        if d in previous:
            note = PREVIOUS_LAYOUT + (f"; {note}" if note and status != "pending" else "")
        rows.append(
            {
                "status": status,
                **where,
                "seeds_done": sum(1 for r in mine if is_finished(r)),
                "seeds": len(seeds) or len(recs),
                "step": step,
                "steps": steps,
                "elapsed_s": elapsed,
                "online_steps": (recs[0].get("online_steps") or 0) if recs else 0,
                "env_steps": max((r.get("env_steps") or 0 for r in mine if r), default=0),
                "score": mean_score([r for r in mine if r]),
                "note": note,
                "run_dir": d,
            }
        )
    return rows


@click.command("status")
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder of a sweep (or of `offbench run`).",
)
def status_command(results):
    """Done / diverged / running / failed / resumable / damaged / pending per run, with elapsed time and last
    score (resumable: a checkpoint to continue with --resume; damaged: a record or checkpoint that cannot be read)."""
    if not Path(results).is_dir():
        raise OffbenchError(f"results folder {results} does not exist; pass --results DIR of a sweep")
    rows = collect_status(results)
    if not rows:
        click.echo(f"no runs in {results}")
        return
    click.echo(
        f"{'status':8s} {'suite':11s} {'dataset':28s} {'algo':10s} {'seeds':>5s} {'step':>15s} "
        f"{'elapsed':>8s} {'score':>6s} variant"
    )
    order = {"running": 0, "failed": 1, "damaged": 2, "diverged": 3, "resumable": 4, "pending": 5, "done": 6}
    for r in sorted(rows, key=lambda r: (order.get(r["status"], 9), r["suite"], r["dataset"], r["algo"])):
        step = "-" if r["step"] is None else f"{r['step']}/{r['steps'] if r['steps'] is not None else '?'}"
        if r.get("online_steps") and r["steps"] is not None and r["step"] is not None:  # offline, then online
            step = f"{min(r['step'], r['steps'])}/{r['steps']}+{r['env_steps']}/{r['online_steps']}env"
        click.echo(
            f"{r['status']:8s} {r['suite']:11s} {r['dataset']:28s} {r['algo']:10s} "
            f"{r['seeds_done']}/{r['seeds']:<3d} {step:>15s} {_fmt_s(r['elapsed_s']):>8s} "
            f"{_fmt_score(r['score']):>6s} {r['variant']}" + (f"  {r['note']}" if r["note"] else "")
        )
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    click.echo(
        f"{len(rows)} runs: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("done", "running", "failed", "pending"))
        + "".join(f", {counts[k]} {k}" for k in ("resumable", "damaged", "diverged") if counts.get(k))
    )
