"""The data-card table of docs/data.md: every local rebuild beside D4RL's published statistics.

    python scripts/data_card.py                       # every local rebuilt dataset of locomotion / adroit
    python scripts/data_card.py hopper-medium-v2 ...  # these
    python scripts/data_card.py --write docs/data.md  # replace the table between the data-card markers

Each row is ``offbench.data.card.card`` of the local dataset (what ``offbench data info NAME`` prints); D4RL's
columns come from :data:`D4RL`, each value with its source. A build smaller than its recipe's size is marked
"small build" (its statistics are not comparable with D4RL's).
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
BEGIN, END = "<!-- data-card:begin -->", "<!-- data-card:end -->"


def _f(v, fmt="{:,.1f}"):
    return "—" if v is None else fmt.format(v)


def rows(names: list[str]) -> list[str]:
    from offbench.cli.data import load_local
    from offbench.data.build.recipes import get_recipe
    from offbench.data.card import card

    head = (
        "| dataset | build | transitions | episodes | mean length | terminals | timeouts | score (own refs) "
        "| score (D4RL refs) | ref random (n) | ref expert (n) | D4RL transitions | D4RL mean length | D4RL score |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        ds, task, suite, kind = load_local(f"rebuilt/{name}")
        c = card(ds, task, suite)
        rec = get_recipe(name)
        size = ds.metadata.get("recipe_size")
        build = f"v{c['recipe_version']}" + (" full" if size is None or size >= rec.default_size else " small build")
        ref = D4RL.get(name, (None, None, None))
        out.append(
            f"| {name} | {build} | {c['transitions']:,} | {c['episodes']:,} | {c['episode_length_mean']:.1f} "
            f"| {100 * c['terminal_fraction']:.2f}% | {100 * c['timeout_fraction']:.2f}% "
            f"| {_f(c['score_own_refs'])} | {_f(c['score_d4rl_refs'])} "
            f"| {_f(c['ref_min_score'])} ± {_f(c['ref_min_std'])} ({c['ref_min_episodes']}) "
            f"| {_f(c['ref_max_score'])} ± {_f(c['ref_max_std'])} ({c['ref_max_episodes']}) "
            f"| {_f(ref[0], '{:,}')} | {_f(ref[1], '{:,}')} | {_f(ref[2])} |"
        )
    return out


def local_names() -> list[str]:
    from offbench.data.build.recipes import all_recipes
    from offbench.data.loaders import minari_local_ids

    local = minari_local_ids()
    return sorted(
        n for n, r in all_recipes().items() if r.suite in ("locomotion", "adroit") and f"rebuilt/{n}" in local
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--write", default=None, help="A markdown file whose data-card block is replaced.")
    a = p.parse_args(argv)
    table = rows(a.names or local_names())
    if a.write:
        path = Path(a.write)
        text = path.read_text()
        if BEGIN not in text or END not in text:
            print(f"error: {path} has no {BEGIN} ... {END} block", file=sys.stderr)
            return 2
        block = BEGIN + "\n" + "\n".join(table) + "\n" + END
        path.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    else:
        print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
