"""The data card of a dataset (``offbench data info NAME``, ``scripts/data_card.py``): how close a rebuild is
to the data its D4RL name stands for.

Fields: transitions, episodes, episode lengths (mean / min / max), the fractions of terminals and of timeouts/
truncations, of rewarded steps (reward > 0) and of successful episodes (sparse rewards: a positive reward;
Kitchen: all its tasks done), and the behaviour's score: the mean episode return (Kitchen: the most target
subtasks done at once, its reward counting them at every step) normalised with the dataset's own reference
returns and with D4RL's (``d4rl/infos.py``); AntMaze and pointmaze: success fraction x 100.

Episodes of the goal-reaching suites (``Suite.trajectory_episodes``) are the *collected trajectories*, split at
timeouts/truncations only: there a terminal marks the goal, not the end of the trajectory (D4RL's AntMaze
generator keeps the Ant moving after reward = terminal, ``scripts/generation/generate_ant_maze_datasets.py``
resets only at the timeout), so splitting at terminals would count every visit to the goal as an episode.
What training uses is untouched (``Dataset.episode_ends``: returns and the Bellman mask). AntMaze cards add the
trajectories that come within ``ANTMAZE_GOAL_RADIUS`` of the evaluation goal at some step, measured on the
positions (``next_observations[:, :2]``, D4RL's relabel ``relabel_antmaze_rewards.py``) independently of the
reward labels, and what the build's provenance records: the fractions of trajectories with a flip and of those
reaching their commanded goal (``None`` for data without that provenance).

Beside D4RL (issue 28): dense-reward cards give the episode-return distribution (quantiles, D4RL-normalised, and
the last tenth of the episodes in collection order: where a replay buffer's SAC stopped) and, for the medium-replay
sets, what D4RL publishes about its buffer (:data:`D4RL_REPLAY`; no return distribution is published: the card says
so). Cards of rebuilt goal-reaching sets (AntMaze, maze2d, pointmaze, Kitchen) give BC's score measured on that
build (``results/reference/rebuilt_bc.csv``, matched on dataset and recipe version: "not measured" otherwise)
beside the BC scores published on D4RL's data (``results/reference/published_scores.csv``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from offbench.data.loaders import Dataset, episode_ids, episode_returns, episode_slices

QUANTILES = (0, 10, 25, 50, 75, 90, 100)  # percentiles of the episode returns shown by the card
# D4RL's medium-replay buffers: what is published about them. Transitions: the -v2 files as loaded (the same
# figures as scripts/data_card.py's D4RL table, with its sources); the buffer is the SAC's replay buffer up to the
# medium level (D4RL paper, Fu et al. 2020, arXiv 2004.07219: "medium-replay"). No published return distribution
# of these buffers was found (searched: the D4RL paper, Farama-Foundation/D4RL's README and d4rl/infos.py, the
# TFDS catalog d4rl_mujoco_*): the card says so and shows offbench's.
D4RL_REPLAY = {
    "hopper-medium-replay-v2": 402_000,
    "halfcheetah-medium-replay-v2": 202_000,
    "walker2d-medium-replay-v2": 302_000,
}
NO_D4RL_DISTRIBUTION = "no published return distribution (D4RL paper, D4RL's README/infos.py, TFDS catalog)"
REBUILT_BC_FIELDS = (
    "dataset",
    "recipe_version",
    "bc_score",
    "bc_sd",
    "steps",
    "seeds",
    "eval_episodes",
    "data_seeds",  # the builds BC ran on ("0 1 2": one build per data seed, the score their runs' mean)
    "obs_dim",  # the observation BC saw (its width; empty: not recorded, the suite's when the row was written)
    "proxy_success",
    "command",
    "date",
)

# Suites whose terminals do not end the collected trajectory (``Suite.trajectory_episodes``): AntMaze (terminal =
# reward, the Ant keeps moving); maze2d and the pointmaze sets have no terminals (so for them this changes nothing).
# Locomotion / Adroit / Kitchen: a terminal is the end of the episode.


def _norm(ret: float, lo, hi):
    if lo is None or hi is None or hi == lo:
        return None
    return 100.0 * (ret - lo) / (hi - lo)


def trajectory_ends(ds: Dataset) -> np.ndarray:
    """Where the collected trajectories end: at every timeout/truncation, and at a terminal only where the next
    row does not continue the trajectory (its observation is not this row's next observation: a reset). A
    terminal in the middle of a trajectory (the Ant passing the goal) is not an end. Exact for Minari data
    (next observations are the episode's own); in a D4RL hdf5 file without ``next_observations`` a step that is
    both terminal and timeout reads as continuing (the loader takes the following row as its next observation)."""
    term = ds.terminals > 0
    cont = np.zeros(len(ds), bool)
    cont[:-1] = np.all(ds.next_observations[:-1] == ds.observations[1:], axis=1)
    ends = ds.episode_ends & ~(term & cont)
    ends[-1] = True
    return ends


def _provenance(meta: dict) -> dict:
    prov = meta.get("provenance")
    if isinstance(prov, str):
        try:
            prov = json.loads(prov)
        except ValueError:
            return {}
    return prov if isinstance(prov, dict) else {}


def _antmaze_goal(ds: Dataset, task, ids: np.ndarray, n_traj: int) -> dict:
    """Steps and trajectories within the goal radius of the evaluation goal, from the positions."""
    from offbench.data.tasks import ANTMAZE_GOAL_RADIUS, eval_goal_cell, eval_goal_xy

    goal = eval_goal_xy(task)
    if ds.metadata.get("source") == "d4rl-hdf5":  # D4RL's own files are in D4RL's frame (start cell at (0, 0))
        from offbench.d4rl_envs.ant_model import cell_xy

        goal = cell_xy(task.env_kwargs["maze_map"], eval_goal_cell(task))
    elif getattr(ds, "goals", None) is not None and not ds.metadata.get("rebuilt"):  # Minari-hosted: the data's goal
        from offbench.data.hosted import maze_task

        goal = maze_task(task, ds.goals, ds.metadata).goal_xy
    d = np.linalg.norm(ds.next_observations[:, :2].astype(np.float64) - np.asarray(goal), axis=-1)
    near = d <= ANTMAZE_GOAL_RADIUS
    reached = np.zeros(n_traj, bool)
    reached[ids[near]] = True
    return {"eval_goal_step_fraction": float(near.mean()), "eval_goal_trajectory_fraction": float(reached.mean())}


def _reference_dir(reference) -> Path:
    if reference is not None:
        return Path(reference)
    from offbench.resources import reference_dir

    return reference_dir()


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _base(name: str) -> str:
    return re.sub(r"-v\d+$", "", name)


def steps_number(row: dict) -> int:
    """A ``rebuilt_bc.csv`` row's training steps as a number (CSV cells are text), -1 where it holds none."""
    steps = str(row.get("steps") or "").strip()
    return int(steps) if steps.isdigit() else -1


def data_seeds(row: dict) -> list[str]:
    """The data seeds of the builds a ``rebuilt_bc.csv`` row's BC ran on; a BC row written before the column
    ran on one build of seed 0 (what ``offbench run`` builds); a proxy-only row, on none."""
    seeds = str(row.get("data_seeds") or "").split()
    return seeds or (["0"] if str(row.get("bc_score") or "").strip() else [])


def rebuilt_bc(name: str, recipe_version, reference=None, seed=None, obs_dim=None) -> dict | None:
    """The row of ``rebuilt_bc.csv`` for this dataset and recipe version, else None: of several, a BC run over
    the build's own data ``seed`` (when given) before one over other builds only, then the one trained longest,
    then the one on most builds (``data_seeds``; a row may carry only the calibration proxy, ``bc_score`` empty:
    BC not run; it is chosen only where no row has a BC score), whatever the file's order. A row whose
    ``obs_dim`` is another observation than ``obs_dim`` (the suite's view of the data now) is not this data's."""
    rows = [
        r
        for r in _read_csv(_reference_dir(reference) / "rebuilt_bc.csv")
        if r.get("dataset") == name
        and str(r.get("recipe_version")).strip() == str(recipe_version)
        and (obs_dim is None or str(r.get("obs_dim") or "").strip() in ("", str(obs_dim)))
    ]

    def rank(r):  # BC run before proxy only, then on this build's seed, then longest trained, then most builds
        bc, seeds = bool(str(r.get("bc_score") or "").strip()), data_seeds(r)
        return bc, seed is None or str(seed) in seeds, steps_number(r), len(seeds)

    return max(rows, key=rank) if rows else None


def published_bc(name: str, reference=None) -> list[dict]:
    """BC's published offline scores on D4RL's data of the same name (any version), one per source."""
    folder = _reference_dir(reference)
    labels = {r["source"]: r.get("label") or r["source"] for r in _read_csv(folder / "sources.csv")}
    return [
        {
            "source": labels.get(r["source"], r["source"]),
            "dataset": r["dataset"],
            "score": float(r["score"]),
            "std": float(r["std"]) if str(r.get("std") or "").strip() else None,
        }
        for r in _read_csv(folder / "published_scores.csv")
        if _base(r["dataset"]) == _base(name) and r["method"] == "BC" and r["phase"] == "offline"
    ]


def _return_distribution(returns: np.ndarray, lo, hi) -> dict:
    q = np.percentile(returns, QUANTILES)
    tail = returns[-max(1, len(returns) // 10) :]  # the last tenth of the episodes, in collection order
    norm = [_norm(float(v), lo, hi) for v in q]
    return {
        "percentiles": list(QUANTILES),
        "return_quantiles": [float(v) for v in q],
        "return_quantiles_d4rl": None if norm[0] is None else norm,
        "last_tenth_return_mean": float(tail.mean()),
        "last_tenth_score_d4rl": _norm(float(tail.mean()), lo, hi),
    }


def card(ds: Dataset, task=None, suite=None, reference=None) -> dict:
    """The data card of ``ds`` (``task``/``suite``: the suite's task of the same name, for D4RL's references)."""
    by_trajectory = bool(getattr(suite, "trajectory_episodes", False))
    ends = trajectory_ends(ds) if by_trajectory else ds.episode_ends
    slices = episode_slices(ends)
    lengths = np.array([s.stop - s.start for s in slices])
    returns = episode_returns(ds.rewards, ends)
    n = len(ds)
    term = ds.terminals > 0
    timeouts = ends if by_trajectory else ds.episode_ends & ~term  # every trajectory ends by a timeout/truncation
    score_kind = getattr(suite, "score", "return")
    success, scored = None, returns
    if by_trajectory:
        success = float(np.mean([ds.rewards[s].max() > 0 for s in slices]))
    elif getattr(suite, "task_count_reward", False):
        n_tasks = len((task.env_kwargs or {}).get("tasks_to_complete", [])) if task is not None else 4
        # reward = target subtasks done at that step (remove_task_when_completed False): the most at once scores
        scored = np.array([ds.rewards[s].max() for s in slices])
        success = float(np.mean(scored >= n_tasks))
    meta = ds.metadata
    own = (meta.get("ref_min_score"), meta.get("ref_max_score"))
    d4rl = (task.ref_min_score, task.ref_max_score) if task is not None else (None, None)
    mean_ret = float(returns.mean())
    refs = meta.get("references")
    refs = json.loads(refs) if isinstance(refs, str) else (refs or {})
    out = {
        "transitions": int(n),
        "episodes": int(len(slices)),
        "episodes_split_at": "timeouts/truncations only" if by_trajectory else "terminals and timeouts",
        "episode_length_mean": float(lengths.mean()),
        "episode_length_min": int(lengths.min()),
        "episode_length_max": int(lengths.max()),
        "terminal_fraction": float(term.mean()),
        "timeout_fraction": float(timeouts.mean()),
        "rewarded_step_fraction": float((ds.rewards > 0).mean()),
        "success_fraction": success,
        "return_mean": mean_ret,
        "return_std": float(returns.std()),
        "score_own_refs": None,
        "score_d4rl_refs": None,
        "score_kind": score_kind,
        "ref_min_score": own[0],
        "ref_max_score": own[1],
        "d4rl_ref_min": d4rl[0],
        "d4rl_ref_max": d4rl[1],
        "ref_min_std": refs.get("ref_min_std"),
        "ref_max_std": refs.get("ref_max_std"),
        "ref_min_episodes": refs.get("ref_min_episodes"),
        "ref_max_episodes": refs.get("ref_max_episodes"),
        "recipe": meta.get("recipe"),
        "recipe_version": meta.get("recipe_version"),
        # a build of another size than the recipe's (sources.resolve's rule), else None
        "recipe_size": meta.get("recipe_size") if meta.get("recipe_size") != meta.get("recipe_default_size") else None,
    }
    if task is not None and task.goal_radius is not None:  # AntMaze (its tasks' registration gives the radius)
        out.update(_antmaze_goal(ds, task, episode_ids(ends), len(slices)))
        prov = _provenance(meta)
        for key, field in (
            ("flipped_trajectory_fraction", "flipped_episode_fraction"),
            ("commanded_goal_trajectory_fraction", "commanded_goal_episode_fraction"),
        ):
            out[key] = None if prov.get(field) is None else float(prov[field])
    check = _provenance(meta).get("stitching_check")  # pointmaze stitching sets (recipes/pointmaze.py)
    if check:
        out["stitching_check"] = check
    if score_kind == "success" and success is not None:
        out["score_own_refs"] = out["score_d4rl_refs"] = 100.0 * success
    else:
        mean = float(scored.mean())
        out["score_own_refs"], out["score_d4rl_refs"] = _norm(mean, *own), _norm(mean, *d4rl)
        out["return_distribution"] = _return_distribution(scored, *d4rl)
        out["scored_by"] = "return" if scored is returns else "most subtasks done at once"
    name = task.name if task is not None else None
    if name in D4RL_REPLAY:
        out["d4rl_buffer"] = {"transitions": D4RL_REPLAY[name], "return_distribution": NO_D4RL_DISTRIBUTION}
    goal_reaching = by_trajectory or bool(getattr(suite, "task_count_reward", False))
    if goal_reaching and meta.get("rebuilt") and name is not None:
        seed = _provenance(meta).get("seed")
        dim = ds.observations.shape[1]
        out["bc_on_this_data"] = rebuilt_bc(name, meta.get("recipe_version"), reference, seed, dim)
        out["published_bc"] = published_bc(name, reference)
    return out


def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def format_card(name: str, c: dict) -> list[str]:
    """Human-readable lines of a card."""
    lines = [
        f"{name}" + (f" (recipe {c['recipe']} version {c['recipe_version']})" if c.get("recipe") else ""),
        f"  transitions        {c['transitions']:,}",
        f"  episodes           {c['episodes']:,}  (length mean {c['episode_length_mean']:.1f}, "
        f"min {c['episode_length_min']}, max {c['episode_length_max']}; split at {c['episodes_split_at']})",
        f"  terminals          {_fmt(c['terminal_fraction'], True)} of transitions",
        f"  timeouts           {_fmt(c['timeout_fraction'], True)} of transitions",
        f"  rewarded steps     {_fmt(c['rewarded_step_fraction'], True)}",
        f"  successful eps     {_fmt(c['success_fraction'], True)}",
    ]
    if "eval_goal_trajectory_fraction" in c:
        lines += [
            f"  near eval goal     {_fmt(c['eval_goal_step_fraction'], True)} of steps, "
            f"{_fmt(c['eval_goal_trajectory_fraction'], True)} of trajectories (positions)",
            f"  flipped            {_fmt(c['flipped_trajectory_fraction'], True)} of trajectories (provenance)",
            f"  commanded goal     {_fmt(c['commanded_goal_trajectory_fraction'], True)} of trajectories reach it "
            "(provenance)",
        ]
    if c.get("stitching_check"):
        k = c["stitching_check"]
        lines.append(
            f"  stitching check    {k['rewarded_episodes_from_start_region']} of {k['rewarded_episodes']} rewarded episodes "
            "start in the first half of the start -> goal path; evaluation goal "
            + ("commanded" if k.get("eval_goal_commanded") else "never commanded")
        )
    lines.append(f"  episode return     {c['return_mean']:,.1f} +- {c['return_std']:,.1f}")
    own = f"  behaviour score    {_fmt(c['score_own_refs'])} on its own references"
    if c["ref_min_score"] is not None:
        own += f" (random {c['ref_min_score']:,.1f}"
        if c.get("ref_min_std") is not None:
            own += f" +- {c['ref_min_std']:,.1f}, {c['ref_min_episodes']} eps"
        own += f"; expert {c['ref_max_score']:,.1f}"
        if c.get("ref_max_std") is not None:
            own += f" +- {c['ref_max_std']:,.1f}, {c['ref_max_episodes']} eps"
        own += ")"
    lines.append(own)
    lines.append(
        f"  behaviour score    {_fmt(c['score_d4rl_refs'])} on D4RL's references"
        + (f" ({c['d4rl_ref_min']:,.1f} / {c['d4rl_ref_max']:,.1f})" if c["d4rl_ref_min"] is not None else "")
        + (f"; an episode's {c['scored_by']}" if c.get("scored_by", "return") != "return" else "")
    )
    return lines + _distribution_lines(c) + _bc_lines(c)


def _distribution_lines(c: dict) -> list[str]:
    dist = c.get("return_distribution")
    if not dist:
        return []
    pct = "/".join(str(p) for p in dist["percentiles"])
    what = "return" if c.get("scored_by", "return") == "return" else "subtasks"  # Kitchen: see card()
    head = f"  {'return quantiles' if what == 'return' else 'subtasks done':<19}{pct}%: "
    lines = [head + " / ".join(f"{v:,.0f}" for v in dist["return_quantiles"])]
    if dist["return_quantiles_d4rl"] is not None:
        lines.append(
            "                     on D4RL's references: "
            + " / ".join(f"{v:.1f}" for v in dist["return_quantiles_d4rl"])
        )
    lines.append(
        f"  last tenth of eps  {what} {dist['last_tenth_return_mean']:,.1f}, score {_fmt(dist['last_tenth_score_d4rl'])} "
        "on D4RL's references (collection order)"
    )
    buf = c.get("d4rl_buffer")
    if buf:
        lines.append(
            f"  D4RL's buffer      {buf['transitions']:,} transitions (here {c['transitions']:,}); "
            f"{buf['return_distribution']}: only offbench's is shown"
        )
    return lines


def _bc_lines(c: dict) -> list[str]:
    if "bc_on_this_data" not in c:
        return []
    mine, pub = bc_summary(c)
    return [f"  BC on this data    {mine}", f"  BC published       {pub} (D4RL's data, not this build)"]


def bc_summary(c: dict) -> tuple[str, str]:
    """("BC on this data" as text, BC's published scores as text) of a card that has them."""
    bc = c.get("bc_on_this_data")
    if bc is None or not str(bc.get("bc_score") or "").strip():
        mine = f"not measured for recipe version {c.get('recipe_version')} (results/reference/rebuilt_bc.csv)"
        if bc is not None and str(bc.get("proxy_success") or "").strip():
            mine += f"; calibration proxy success {bc['proxy_success']}"
    else:
        sd = f" +- {float(bc['bc_sd']):.1f}" if str(bc.get("bc_sd") or "").strip() else ""
        builds = data_seeds(bc)
        on = f"data seed {builds[0]}" if len(builds) == 1 else f"{len(builds)} builds: data seeds {' '.join(builds)}"
        obs = f"; {bc['obs_dim']}-d observation" if str(bc.get("obs_dim") or "").strip() else ""
        mine = (
            f"{float(bc['bc_score']):.1f}{sd} ({int(float(bc['steps'])):,} steps, {bc['seeds']} seeds, "
            f"{bc['eval_episodes']} eval episodes, {on}{obs}; {bc.get('date', '')})"
        )
    pub = "; ".join(
        f"{p['source']} {p['score']:.1f}"
        + (f" +- {p['std']:.1f}" if p["std"] is not None else "")
        + f" [{p['dataset']}]"
        for p in c.get("published_bc") or []
    )
    if bc is not None and c.get("recipe_size") is not None:
        mine += f"; measured on the calibration's build, this one is a {c['recipe_size']:,}-transition build"
    return mine, pub or "none in results/reference"
