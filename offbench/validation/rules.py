"""Decision statistics of ``offbench validate``: exact permutation tests on normalised scores and the seeds a
claim needs for a stated power. Pure numpy; no bootstrap (that is rliable's, for the figures).

Two-sample test (A's runs vs B's runs, seeds independent): the runs of both algorithms on one dataset are
exchangeable under H0, so labels are permuted *within* each dataset (a stratified permutation test; Good,
"Permutation, Parametric and Bootstrap Tests of Hypotheses", 3rd ed., 2005, sec. 3.7 and 9.3; Ernst, Stat. Sci.
19(4), 2004, sec. 2). Statistic: the mean over datasets of (mean of A's runs - mean of B's runs), in normalised
points. A margin d is tested by shifting A's scores by -d first (the shift-model test of H0: Delta <= d; Ernst
sec. 3). Exact: every relabelling is enumerated when there are at most ``EXACT_LIMIT`` of them (3 vs 3 on one
dataset: C(6, 3) = 20); otherwise ``RESAMPLES`` random relabellings with p = (1 + #{T >= t}) / (1 + N)
(Phipson & Smyth, Stat. Appl. Genet. Mol. Biol. 9(1), 2010, eq. 2), seeded.

Paired test (the same runs before and after fine-tuning): random sign flips of the per-run differences
(Good 2005, sec. 3.6.2), enumerated when there are at most ``EXACT_LIMIT`` of them.

Seeds for a power (one-sided level alpha, power 1 - beta; the normal approximation to the tests above, Chow, Shao &
Wang, "Sample Size Calculations in Clinical Research", 2nd ed., 2008, sec. 3.2.1 and 3.1.1):
two-sample n = 2 sd^2 (z_{1-alpha} + z_{1-beta})^2 / (D (effect - d)^2) per algorithm, paired
n = sd^2 (z_{1-alpha} + z_{1-beta})^2 / (D (effect - d)^2), D datasets; and at least the smallest n at which the
exact test can reach p <= alpha at all (C(2n, n)^D >= 1/alpha; paired 2^(nD) >= 1/alpha)."""

from __future__ import annotations

import itertools
import math

import numpy as np

EXACT_LIMIT = 200_000
RESAMPLES = 20_000
_TOL = 1e-9  # statistics equal up to float rounding count as ties (ties make the test conservative)


def _stratum_stats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every relabelling's (mean A - mean B) of one dataset (len(a) of the pooled runs labelled A)."""
    z = np.concatenate([a, b])
    n, na = len(z), len(a)
    idx = np.array(list(itertools.combinations(range(n), na)))
    sa = z[idx].sum(axis=1)
    return sa / na - (z.sum() - sa) / (n - na)


def two_sample_p(a: np.ndarray, b: np.ndarray, shift: float = 0.0, greater: bool = True, seed: int = 0) -> dict:
    """One-sided stratified permutation test of H0: Delta <= shift (greater) or Delta >= shift (not greater),
    Delta = mean over datasets of (mean A - mean B). ``a``, ``b``: (seeds x datasets). Returns p, the observed
    Delta, whether p is exact, and the number of relabellings used."""
    a, b = np.asarray(a, float) - shift, np.asarray(b, float)
    d = a.shape[1]
    sign = 1.0 if greater else -1.0
    obs = sign * float(np.mean(a.mean(axis=0) - b.mean(axis=0)))
    counts = [math.comb(a.shape[0] + b.shape[0], a.shape[0])] * d
    total = math.prod(counts)
    if total <= EXACT_LIMIT:
        dist = np.zeros(1)
        for j in range(d):
            dist = (dist[:, None] + _stratum_stats(a[:, j], b[:, j])[None, :]).ravel()
        dist = sign * dist / d
        p, exact, used = float(np.mean(dist >= obs - _TOL)), True, total
    else:
        rng = np.random.default_rng(seed)
        stat = np.zeros(RESAMPLES)
        for j in range(d):
            z = np.concatenate([a[:, j], b[:, j]])
            perm = rng.permuted(np.broadcast_to(z, (RESAMPLES, len(z))), axis=1)
            stat += perm[:, : a.shape[0]].mean(axis=1) - perm[:, a.shape[0] :].mean(axis=1)
        stat = sign * stat / d
        p, exact, used = float((1 + np.sum(stat >= obs - _TOL)) / (1 + RESAMPLES)), False, RESAMPLES
    return {"p": p, "delta": sign * obs + shift, "exact": exact, "relabellings": used}


def paired_p(after: np.ndarray, before: np.ndarray, shift: float = 0.0, greater: bool = True, seed: int = 0) -> dict:
    """One-sided sign-flip test of H0: mean(after - before) <= shift (greater) or >= shift, the same runs."""
    diff = (np.asarray(after, float) - np.asarray(before, float)).ravel() - shift
    sign = 1.0 if greater else -1.0
    obs = sign * float(diff.mean())
    n = len(diff)
    if 2**n <= EXACT_LIMIT:
        flips = 1.0 - 2.0 * np.array(list(itertools.product((0, 1), repeat=n)), float)
        stat, exact, used = sign * (flips * diff).mean(axis=1), True, 2**n
        p = float(np.mean(stat >= obs - _TOL))
    else:
        rng = np.random.default_rng(seed)
        flips = rng.choice((-1.0, 1.0), size=(RESAMPLES, n))
        stat, exact, used = sign * (flips * diff).mean(axis=1), False, RESAMPLES
        p = float((1 + np.sum(stat >= obs - _TOL)) / (1 + RESAMPLES))
    return {"p": p, "delta": sign * obs + shift, "exact": exact, "relabellings": used}


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def min_exact_seeds(datasets: int, alpha: float, paired: bool = False) -> int:
    """The fewest seeds per algorithm with which the exact test can reach p <= alpha at all."""
    n = 1
    while (2 ** (n * datasets) if paired else math.comb(2 * n, n) ** datasets) < 1.0 / alpha:
        n += 1
    return n


def seeds_for_power(
    effect: float, sd: float, null: float, datasets: int, alpha: float = 0.05, power: float = 0.8, paired=False
) -> int | None:
    """Seeds per algorithm for ``power`` to reject H0: Delta <= ``null`` when the true Delta is ``effect`` and the
    per-run standard deviation is ``sd`` (normalised points), one-sided at ``alpha``; None when effect <= null
    (no number of seeds gives the power)."""
    gap = effect - null
    if gap <= 0:
        return None
    k = 1.0 if paired else 2.0
    n = k * sd**2 * (_z(1 - alpha) + _z(power)) ** 2 / (datasets * gap**2)
    return max(math.ceil(n - 1e-9), min_exact_seeds(datasets, alpha, paired))
