"""Protocol files: run groups and claims, checked before anything runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from offbench.errors import OffbenchError

RELATIONS = (">=", ">", ">>", "after>before")
# The margin each relation tests, in normalised points (a claim's ``margin:`` overrides it; rules in verdicts.py):
# ">": Delta > 0; ">>": Delta > 25 (a quarter of the normalised range; in IQL Table 1 IQL leads the best of BC,
# 10%BC, AWAC and one-step on AntMaze medium/large by 39.6-65.8 points, ../shared/reference/iql_paper_offline.csv); ">=": non-inferiority, Delta > -10 (about
# the seed spread of the published locomotion scores: CORL's README reports +-0.2 to +-27 over 4 seeds);
# "after>before": the paired difference > 0.
MARGINS = {">": 0.0, ">>": 25.0, ">=": 10.0, "after>before": 0.0}
GROUP_KEYS = {
    "name",
    "algos",
    "suites",
    "datasets",
    "steps",
    "online_steps",
    "eval_every",
    "eval_episodes",
    "seeds",
    "set",
}


@dataclasses.dataclass
class Claim:
    id: str
    claim: str
    source: str
    group: str
    a: str
    b: list  # algorithms A is compared with (one verdict row each); empty for after>before
    relation: str
    datasets: list
    margin: float = 0.0  # the relation's margin (MARGINS unless the claim states one)
    expect: dict | None = None  # {effect, sd, from}: the effect and per-run sd the source leads one to expect
    last_evals: int = 1  # a run's score: the mean of its last this-many evaluations (1: the final score)

    @property
    def null(self) -> float:
        """The boundary of H0 (normalised points): pass rejects Delta <= null, fail rejects Delta >= null."""
        return -self.margin if self.relation == ">=" else self.margin

    def planned_seeds(self, alpha: float, power: float) -> int | None:
        """Seeds per algorithm for ``power`` at ``alpha`` under the claim's expected effect and sd (None: no
        expectation stated, or the expected effect does not exceed the margin)."""
        if not self.expect:
            return None
        from offbench.validation.rules import seeds_for_power

        return seeds_for_power(
            float(self.expect["effect"]),
            float(self.expect["sd"]),
            self.null,
            len(self.datasets),
            alpha,
            power,
            paired=self.relation == "after>before",
        )


@dataclasses.dataclass
class Protocol:
    tier: str
    reduced: bool
    label: str
    seeds: int
    builds: dict  # dataset -> transitions of its rebuild (None: the recipe's size)
    groups: dict  # name -> sweep keys
    claims: list
    path: Path
    reps: int = 2000
    alpha: float = 0.05  # one-sided level of every test
    power: float = 0.8  # the power the planned seeds are computed for
    saturation_band: float = 5.0  # all scores within this of 0 or 100: "saturated"

    def group_runs(self) -> list[tuple[str, str, str]]:
        """(group, algorithm, dataset) of every run the protocol needs."""
        return [(g, a, d) for g, spec in self.groups.items() for a in spec["algos"] for d in spec["datasets"]]


def dataset_key(dataset: str) -> str:
    """The name runs record for a dataset: a D4RL hdf5 file is named after its stem (as `offbench run` does)."""
    from offbench.data.naming import dataset_name  # the one file test (is_dataset_file) and naming

    return dataset_name(str(dataset))


def protocol_path(tier_or_path: str) -> Path:
    p = Path(tier_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise OffbenchError(f"protocol file {p} does not exist")
        return p
    from offbench.resources import configs_dir

    p = configs_dir() / "validation" / f"{tier_or_path}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in (configs_dir() / "validation").glob("*.yaml"))
        raise OffbenchError(f"unknown tier {tier_or_path!r}; known tiers: {', '.join(known)} (or a protocol .yaml)")
    return p


def load_protocol(tier_or_path: str) -> Protocol:
    path = protocol_path(tier_or_path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OffbenchError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    for key in ("tier", "label", "seeds", "groups", "claims"):
        if key not in doc:
            raise OffbenchError(f"{path}: missing key {key!r}")
    seeds = int(doc["seeds"])
    groups = {}
    for g in doc["groups"]:
        unknown = set(g) - GROUP_KEYS
        if unknown or "name" not in g or not g.get("algos") or not g.get("datasets"):
            raise OffbenchError(
                f"{path}: group {g.get('name')!r} needs name, algos, suites, datasets (unknown keys: {sorted(unknown)})"
            )
        groups[g["name"]] = {"seeds": seeds, **g}
    claims = []
    for c in doc["claims"]:
        b = c.get("b") or []
        b = [b] if isinstance(b, str) else list(b)
        claim = Claim(
            id=str(c["id"]),
            claim=str(c["claim"]),
            source=str(c["source"]),
            group=str(c["group"]),
            a=str(c["a"]),
            b=b,
            relation=str(c["relation"]),
            datasets=list(c["datasets"]),
            margin=float(c.get("margin", MARGINS.get(str(c["relation"]), 0.0))),
            expect=dict(c["expect"]) if c.get("expect") else None,
            last_evals=int(c.get("last_evals", 1)),
        )
        if claim.relation not in RELATIONS:
            raise OffbenchError(f"{path}: claim {claim.id}: relation {claim.relation!r} is not one of {RELATIONS}")
        if claim.group not in groups:
            raise OffbenchError(f"{path}: claim {claim.id} names group {claim.group!r}, which is not defined")
        grp = groups[claim.group]
        missing = [x for x in [claim.a, *claim.b] if x not in grp["algos"]] + [
            d for d in claim.datasets if d not in {dataset_key(x) for x in grp["datasets"]}
        ]
        if missing:
            raise OffbenchError(f"{path}: claim {claim.id} needs {missing}, which group {claim.group} does not run")
        if claim.relation == "after>before" and not grp.get("online_steps"):
            raise OffbenchError(
                f"{path}: claim {claim.id} compares before/after fine-tuning; its group has no online_steps"
            )
        if claim.relation != "after>before" and not claim.b:
            raise OffbenchError(f"{path}: claim {claim.id} needs b (the algorithms A is compared with)")
        if claim.expect and not {"effect", "sd", "from"} <= set(claim.expect):
            raise OffbenchError(f"{path}: claim {claim.id}: expect needs effect, sd and from (where they come from)")
        from offbench.validation.rules import min_exact_seeds

        floor = min_exact_seeds(len(claim.datasets), float(doc.get("alpha", 0.05)), claim.relation == "after>before")
        if int(grp["seeds"]) < floor:
            raise OffbenchError(
                f"{path}: claim {claim.id}: with {grp['seeds']} seeds the exact test can never reach "
                f"p <= {doc.get('alpha', 0.05)}; run at least {floor} seeds"
            )
        if claim.margin < 0:
            raise OffbenchError(f"{path}: claim {claim.id}: margin must be >= 0 (>= tests Delta > -margin)")
        claims.append(claim)
    return Protocol(
        tier=str(doc["tier"]),
        reduced=bool(doc.get("reduced", False)),
        label=str(doc["label"]),
        seeds=seeds,
        builds=dict(doc.get("builds") or {}),
        groups=groups,
        claims=claims,
        path=path,
        reps=int(doc.get("reps", 2000)),
        alpha=float(doc.get("alpha", 0.05)),
        power=float(doc.get("power", 0.8)),
        saturation_band=float(doc.get("saturation_band", 5.0)),
    )
