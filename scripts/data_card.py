"""The data-card tables of docs/data.md (locomotion / Adroit) and docs/antmaze.md (AntMaze): every local
rebuild beside D4RL's published statistics.

    python scripts/data_card.py                           # every local rebuilt dataset, both tables
    python scripts/data_card.py hopper-medium-v2 ...      # these
    python scripts/data_card.py --write docs/data.md      # replace the table(s) between the markers the file has
    python scripts/data_card.py --minari-dir A --minari-dir B --write docs/antmaze.md
                                                          # datasets from several Minari folders

Each row is ``offbench.data.card.card`` of the local dataset (what ``offbench data info NAME`` prints); D4RL's
columns come from :data:`D4RL` and :data:`D4RL_ANTMAZE`, each value with its source ("—": none found). A build
smaller than its recipe's size is marked "small build" (its statistics are not comparable with D4RL's).
``--minari-dir`` (repeatable; default: ``$MINARI_DATASETS_PATH``) names the Minari folders to read; each dataset
is read from the first folder that has it. A block with no local dataset is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# D4RL's published statistics of the original data: (transitions, mean episode length, behaviour score on
# D4RL's references); None = not recorded here. Sources: [size] d4rl/infos.py download list + D4RL paper
# (Fu et al. 2020, Table 5 "dataset size"), medium-replay sizes as loaded from the -v2 files, cloned
# N = horizon x 5000 (scripts/generation/hand_dapg_combined.py); [len] mean episode length measured on the
# -v2 files (issue 13: hopper-medium 457, hopper/walker2d-medium-replay 197 / 276); [score] mean episode
# return of the -v2 medium files (hopper 1422.1, halfcheetah 4770.3, walker2d 2852.1) on infos.py's scale.
D4RL = {
    "hopper-medium-v2": (1_000_000, 457, 44.3),
    "halfcheetah-medium-v2": (1_000_000, 1000, 40.7),
    "walker2d-medium-v2": (1_000_000, None, 62.1),
    "hopper-medium-replay-v2": (402_000, 197, None),
    "halfcheetah-medium-replay-v2": (202_000, 1000, None),
    "walker2d-medium-replay-v2": (302_000, 276, None),
    "hopper-random-v2": (1_000_000, None, None),
    "halfcheetah-random-v2": (1_000_000, 1000, None),
    "walker2d-random-v2": (1_000_000, None, None),
    "hopper-expert-v2": (1_000_000, None, None),
    "halfcheetah-expert-v2": (1_000_000, 1000, None),
    "walker2d-expert-v2": (1_000_000, None, None),
    "hopper-medium-expert-v2": (2_000_000, None, None),
    "halfcheetah-medium-expert-v2": (2_000_000, 1000, None),
    "walker2d-medium-expert-v2": (2_000_000, None, None),
    "door-human-v1": (6_729, None, None),
    "pen-cloned-v1": (500_000, None, None),
    "door-cloned-v1": (1_000_000, None, None),
    "hammer-cloned-v1": (1_000_000, None, None),
    "relocate-cloned-v1": (1_000_000, None, None),
    "pen-expert-v1": (500_000, None, None),
    "door-expert-v1": (1_000_000, None, None),
    "hammer-expert-v1": (1_000_000, None, None),
    "relocate-expert-v1": (1_000_000, None, None),
}
# D4RL's AntMaze data (the -v2 files of d4rl/infos.py): (transitions, trajectories, mean trajectory length).
# Source: scripts/generation/generate_ant_maze_datasets.py, whose defaults are --num_samples 1e6 and
# --max_episode_steps 1000 with the timeout at ts >= 1000 checked after each step, ts from 0 (a 1001-step
# trajectory, then env.reset()): 999 trajectories of 1001 steps and one of 1 -- the script's figures, not measured
# on the files (which cannot be downloaded here). Rewarded steps, trajectories reaching the evaluation goal and
# flips: no published per-dataset figure was found (D4RL's paper, wiki and infos.py give none; the -v2 files are
# needed to measure them), so those columns say "—".
D4RL_ANTMAZE = {
    f"antmaze-{k}-v2": (1_000_000, 1_000, 1_000.0)
    for k in ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse")
}
BEGIN, END = "<!-- data-card:begin -->", "<!-- data-card:end -->"
AM_BEGIN, AM_END = "<!-- antmaze-card:begin -->", "<!-- antmaze-card:end -->"


def _f(v, fmt="{:,.1f}"):
    if v is None:
        return "—"
    out = fmt.format(v)
    return out[1:] if out.startswith("-") and not out.strip("-0.,") else out  # no "-0.0"


def _load(name: str, where: dict):
    """(card, recipe, dataset metadata) of ``rebuilt/name`` read from the folder ``where`` names for it."""
    from offbench.cli.data_card import load_local
    from offbench.data.card import card
    from offbench.data.staging import minari_dir
    from offbench.recipes.recipes import get_recipe

    with minari_dir(where.get(name)):
        ds, task, suite, _kind = load_local(f"rebuilt/{name}")
    return card(ds, task, suite), get_recipe(name), ds.metadata


def _build(c: dict, rec, meta: dict, by_count: bool = False) -> str:
    """The build column, "vN full" or "vN small build": a ``recipe_size`` below the recipe's, or (``by_count``, for
    recipes of a fixed size such as AntMaze's 1M) fewer than 90% of its transitions (``sources.resolve``'s rule)."""
    size = meta.get("recipe_size")
    small = (size is not None and size < rec.default_size) or (by_count and c["transitions"] < 0.9 * rec.default_size)
    return f"v{c['recipe_version']}" + (" small build" if small else " full")


def _pct(v):
    return "—" if v is None else f"{100 * v:.2f}%"


def antmaze_rows(names: list[str], where: dict | None = None) -> list[str]:
    """The AntMaze table: trajectories (split at timeouts), rewarded steps, steps and trajectories within 0.5 m of
    the evaluation goal (positions), trajectories reaching their commanded goal and with a flip (provenance), the
    behaviour score (success x 100), beside D4RL's figures."""
    head = (
        "| dataset | build | transitions | trajectories | mean length | rewarded steps | steps near eval goal "
        "| trajectories reaching eval goal | reaching commanded goal | flipped trajectories | behaviour score "
        "| D4RL transitions "
        "| D4RL trajectories (mean length) | D4RL rewarded steps | D4RL reaching eval goal "
        "| BC on this data (steps, seeds) | BC published (D4RL's data) |"
    )
    from offbench.data.card import bc_summary  # issue 28: BC measured on the build beside BC published on D4RL's

    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        c, rec, meta = _load(name, where or {})
        ref = D4RL_ANTMAZE.get(name)
        d4rl = f"| {ref[0]:,} | {ref[1]:,} ({ref[2]:.1f}) " if ref else "| — | — "
        out.append(
            f"| {name} | {_build(c, rec, meta, True)} | {c['transitions']:,} | {c['episodes']:,} "
            f"| {c['episode_length_mean']:.1f} | {_pct(c['rewarded_step_fraction'])} "
            f"| {_pct(c.get('eval_goal_step_fraction'))} | {_pct(c.get('eval_goal_trajectory_fraction'))} "
            f"| {_pct(c.get('commanded_goal_trajectory_fraction'))} | {_pct(c.get('flipped_trajectory_fraction'))} "
            f"| {_f(c['score_own_refs'])} {d4rl}| — | — | {' | '.join(bc_summary(c))} |"
        )
    return out


def rows(names: list[str], where: dict | None = None) -> list[str]:
    head = (
        "| dataset | build | transitions | episodes | mean length | terminals | timeouts | score (own refs) "
        "| score (D4RL refs) | ref random (n) | ref expert (n) | D4RL transitions | D4RL mean length | D4RL score |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        c, rec, meta = _load(name, where or {})
        ref = D4RL.get(name, (None, None, None))
        out.append(
            f"| {name} | {_build(c, rec, meta)} | {c['transitions']:,} | {c['episodes']:,} "
            f"| {c['episode_length_mean']:.1f} "
            f"| {100 * c['terminal_fraction']:.2f}% | {100 * c['timeout_fraction']:.2f}% "
            f"| {_f(c['score_own_refs'])} | {_f(c['score_d4rl_refs'])} "
            f"| {_f(c['ref_min_score'])} ± {_f(c['ref_min_std'])} ({c['ref_min_episodes']}) "
            f"| {_f(c['ref_max_score'])} ± {_f(c['ref_max_std'])} ({c['ref_max_episodes']}) "
            f"| {_f(ref[0], '{:,}')} | {_f(ref[1], '{:,}')} | {_f(ref[2])} |"
        )
    return out


TABLES = {  # block markers: (suites of its rows, the table's rows)
    (BEGIN, END): (("locomotion", "adroit"), rows),
    (AM_BEGIN, AM_END): (("antmaze",), antmaze_rows),
}


def locate(dirs: list) -> dict:
    """{dataset name: the first folder of ``dirs`` that holds ``rebuilt/name``} (``dirs`` empty: the current one)."""
    from offbench.data.loaders import minari_local_ids
    from offbench.data.staging import minari_dir

    where: dict = {}
    for d in dirs or [None]:
        with minari_dir(d):
            local = minari_local_ids()
        for ident in sorted(local):
            if ident.startswith("rebuilt/"):
                where.setdefault(ident[len("rebuilt/") :], d)
    return where


def local_names(where: dict, suites=("locomotion", "adroit")) -> list[str]:
    from offbench.recipes.recipes import all_recipes

    return [n for n, r in all_recipes().items() if r.suite in suites and n in where]  # the recipes' order


def main(argv=None) -> int:
    from offbench.recipes.recipes import all_recipes

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--write", default=None, help="A markdown file whose data-card block(s) are replaced.")
    p.add_argument("--minari-dir", action="append", default=[], help="A Minari datasets folder (repeatable).")
    a = p.parse_args(argv)
    where = locate(a.minari_dir)
    missing = [n for n in a.names if n not in where]
    if missing:
        print(f"error: no rebuilt {', '.join(missing)} in {a.minari_dir or 'the Minari folder'}", file=sys.stderr)
        return 2
    recipes = all_recipes()
    tables = {}
    for markers, (suites, make) in TABLES.items():
        names = [n for n in a.names if n in recipes and recipes[n].suite in suites] or (
            [] if a.names else local_names(where, suites)
        )
        if names:
            tables[markers] = make(names, where)
    if not a.write:
        print("\n\n".join("\n".join(t) for t in tables.values()))
        return 0
    path = Path(a.write)
    text = path.read_text()
    present = [m for m in TABLES if m[0] in text and m[1] in text]
    if not present:
        print(f"error: {path} has no {BEGIN} or {AM_BEGIN} block", file=sys.stderr)
        return 2
    for begin, end in present:
        if (begin, end) not in tables:
            print(f"{path}: no local dataset for the {begin} block; left as it is", file=sys.stderr)
            continue
        block = begin + "\n" + "\n".join(tables[begin, end]) + "\n" + end
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _, b=block: b, text, flags=re.S)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
