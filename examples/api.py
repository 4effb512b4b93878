"""offbench's Python API, notebook style (each ``# %%`` is a cell; run it whole with ``python examples/api.py``).

Trains IQL on one locomotion dataset, loads a seed's policy from the run directory, evaluates it, and reads the
results as tidy pandas DataFrames: learning curves, rliable's aggregate IQM, and the training log (losses and
Q/V values over steps). The defaults are a quick look (5000 steps, 2 seeds), not the paper's protocol; the
tests run this file with a tiny dataset and networks (``--dataset PATH --steps 20 --set hidden_dims=[32,32]``).
"""

# %% Set-up
import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

import offbench
from offbench.report.tidy import rliable_scores

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="hopper-medium-v2", help="a D4RL name, Minari id or hdf5 file")
parser.add_argument("--steps", type=int, default=5000)
parser.add_argument("--eval-every", type=int, default=2500)
parser.add_argument("--episodes", type=int, default=5)
parser.add_argument("--results", default="results")
parser.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
args, _ = parser.parse_known_args()
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # offbench's messages

# %% Train: the same options as `offbench run` (here: 2 seeds, trained together)
records = offbench.run(
    "iql",
    "locomotion",
    args.dataset,
    steps=args.steps,
    eval_every=args.eval_every,
    eval_episodes=args.episodes,
    seeds=2,
    overrides=args.set,
    results=args.results,
    name="api-example",
    progress=False,
)
run_dir = records[0]["run_dir"]
print({r["seed"]: r["final_score"] for r in records})

# %% Load seed 0's policy and act: observations in, actions out
policy = offbench.load_policy(run_dir, seed=0, dataset=args.dataset if Path(args.dataset).is_file() else None)
obs = np.zeros(policy.source.dataset.obs_dim, np.float32)
print("action for a zero observation:", policy(obs))

# %% Evaluate it on its dataset's task (the run's reset seeds: the record's final score again)
evaluation = offbench.evaluate(policy, episodes=args.episodes, seed=0)
print(f"score {evaluation['score']:.1f} (the run's: {records[0]['final_score']:.1f})")

# %% Results as data: one row per run x seed x evaluation step
df = offbench.results(args.results)
print(df[["row", "dataset", "seed", "step", "score", "final", "best"]].to_string(index=False))
print(df[df.final].groupby(["row", "dataset"]).score.agg(["mean", "std", "count"]))  # std: ddof=1

# %% rliable: {row: scores[runs, datasets]} / 100 -> IQM with a 95% stratified-bootstrap CI
from rliable import library as rly  # noqa: E402
from rliable import metrics  # noqa: E402

scores = rliable_scores(df)
point, ci = rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=200)
print({row: (float(point[row][0]), ci[row][:, 0].tolist()) for row in scores})

# %% The training log: losses and Q/V values every log_every steps, beside each record
log = pd.read_csv(Path(run_dir) / "seed_0.metrics.csv")
print(log.tail())
