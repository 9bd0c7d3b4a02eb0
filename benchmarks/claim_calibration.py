"""False-alarm rate and power of every inferential check of the fidelity report.

    .venv/bin/python benchmarks/claim_calibration.py              # about 3 min, one core
    .venv/bin/python benchmarks/claim_calibration.py --n 1000 --json

Each check runs the fidelity report's own code (``trainmap.fidelity``,
``trainmap.analysis.phases``, ``training_map``, ``regression``, ``sandbox.analysis``) on
simulated data with a known answer: under the null the effect the claim asserts is
absent, so the share of simulations where the claim holds is its false-alarm rate; with
a planted effect, that share is its power. α = 0.05 throughout; a threshold claim holds
when its whole 95 % bootstrap interval clears the threshold (a one-sided 2.5 % test).
The designs follow the default config: 10 runs of 200 checkpoints (blog), 10 runs
(exits, section 3.3), 16 seeds x 5 values (ablations), 20 runs of 5 states (detours:
fewer runs per state is flagged underpowered and not judged).

Prints a table; with ``--json`` the last line is a JSON list of
``{"check", "false_alarm", "power"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from trainmap.analysis.phases import chance_pvalue, phase_tests, turn_hits
from trainmap.analysis.regression import RegressionOptions, regress
from trainmap.analysis.training_map import exit_times_pvalue
from trainmap.fidelity import (
    bootstrap_interval,
    cv_difference,
    holm,
    mean_pair_distance,
    pairwise_dissimilarity,
    ratio_of_means,
)
from trainmap.sandbox.analysis import ablation_test

sys.path.insert(0, str(Path(__file__).parent))
from ablation_test import simulate as simulate_ablation  # noqa: E402

ALPHA = 0.05
RUNS, CHECKPOINTS = 10, 200

# ---- blog: phases and turn ---------------------------------------------------------


def _events(rng: np.random.Generator) -> tuple[int, int]:
    """Memorisation early, generalisation much later (the default modular run)."""
    return int(rng.integers(4, 15)), int(rng.integers(60, 160))


def _random_states(rng: np.random.Generator, changes: int) -> np.ndarray:
    """A state sequence that changes ``changes`` times at random checkpoints, each time to
    a different one of 6 states."""
    sequence = np.zeros(CHECKPOINTS, dtype=int)
    for t in np.sort(rng.choice(np.arange(1, CHECKPOINTS), size=changes, replace=False)):
        sequence[t:] = (sequence[t - 1] + rng.integers(1, 6)) % 6
    return sequence


def _phase_runs(rng: np.random.Generator, planted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decoded states and accuracies of 10 runs. Null: the states change 1 + Poisson(7)
    times at random checkpoints. Planted: in each run with chance 1/2 the states follow
    the three phases (states 0, 1, 2, changing at memorisation and at generalisation),
    with 1 + Poisson(2) short excursions (1-10 checkpoints) to states 3-5 on top."""
    states, metrics = [], []
    c = np.arange(CHECKPOINTS)
    for run in range(RUNS):
        memorised, generalised = _events(rng)
        if planted and rng.random() < 0.5:
            sequence = np.digitize(c, [memorised, generalised])
            for _ in range(1 + rng.poisson(2)):
                start = int(rng.integers(1, CHECKPOINTS))
                sequence[start : start + int(rng.integers(1, 11))] = rng.integers(3, 6)
        else:
            sequence = _random_states(rng, 1 + rng.poisson(7))
        states.append(pd.DataFrame({"run": run, "step": c, "state": sequence}))
        metrics.append(
            pd.DataFrame(
                {
                    "run": run,
                    "step": c,
                    "epoch": c * 10.0,
                    "train_acc": np.where(c >= memorised, 1.0, 0.5),
                    "eval_acc": np.where(c >= generalised, 0.95, 0.05),
                }
            )
        )
    return pd.concat(states), pd.concat(metrics)


def phase_checks(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """Both blog phase claims (window ± 2 checkpoints) on one simulated setting."""
    states, metrics = _phase_runs(rng, planted)
    table = phase_tests(states, metrics, 0.99, 0.9, tolerance=2)
    out = {}
    for key, check in (
        ("change", "blog: state changes at both events"),
        ("three_phase", "blog: three phases"),
    ):
        tested = table[table[f"{key}_chance"] > 0]
        p = chance_pvalue(tested[f"{key}_hit"].to_numpy(), tested[f"{key}_chance"].to_numpy())
        out[check] = p < ALPHA
    return out


def turn_check(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """Null: each run's turn at a random checkpoint with a defined angle (3 to 196).
    Planted: with chance 1/2 inside its generalisation window instead."""
    eligible = np.zeros(CHECKPOINTS, dtype=bool)
    eligible[3:-3] = True
    hits, chances = [], []
    for _ in range(RUNS):
        start = int(rng.integers(60, 120))
        end = start + int(rng.integers(10, 60))
        if planted and rng.random() < 0.5:
            turn = int(rng.integers(start, end + 1))
        else:
            turn = int(rng.choice(np.flatnonzero(eligible)))
        hit, chance = turn_hits(eligible, turn, start, end)
        hits.append(hit)
        chances.append(chance)
    return {
        "blog: turn in the generalisation window": chance_pvalue(np.array(hits), np.array(chances))
        < ALPHA
    }


# ---- Hu et al. (2023): exits, section 3.3, detours -----------------------------------


def exit_check(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """10 runs leave the start state by three edges (chances 0.6, 0.25, 0.15), convergence
    times log-normal (CV 0.3). Null: times independent of the edge. Planted: the edges'
    mean times 1 : 1.6 : 3 (figure 2: 1810, 2950, 5450). The old rule (fastest and
    slowest exits ± 2 SEM apart, an exit of one run with SEM 0) is shown beside."""
    edge = rng.choice(3, size=RUNS, p=[0.6, 0.25, 0.15])
    scale = np.array([1.0, 1.6, 3.0])[edge] if planted else 1.0
    times = 2000 * scale * rng.lognormal(0, 0.3, RUNS)
    groups = [times[edge == e] for e in range(3)]
    p = exit_times_pvalue(groups)
    timed = [g for g in groups if len(g)]
    means = np.array([g.mean() for g in timed])
    sems = np.array([g.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else 0.0 for g in timed])
    fast, slow = means.argmin(), means.argmax()
    old = len(timed) >= 2 and means[fast] + 2 * sems[fast] < means[slow] - 2 * sems[slow]
    return {
        "figure 2: exit times differ (ANOVA)": bool(np.isfinite(p) and p < ALPHA),
        "figure 2: exit times, old ±2 SEM rule": bool(old),
    }


def threshold_checks(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """Section 3.3's threshold claims on 10 runs per setting, each judged by its 95 %
    bootstrap interval. Null: at the claim's boundary (ratio of means 3; equal
    coefficients of variation 0.3; equal dissimilarity). Planted: ratio 6; CV 0.1 vs
    0.5; state distributions concentrated vs spread."""

    def times(mean: float, sigma: float) -> np.ndarray:
        return mean * rng.lognormal(-(sigma**2) / 2, sigma, RUNS)  # mean exactly ``mean``

    fast = times(100, 0.1 if planted else 0.3)
    slow = times(600 if planted else 300, 0.5 if planted else 0.3)
    ratio_low = bootstrap_interval(ratio_of_means, fast, slow)[0]
    spread_high = bootstrap_interval(cv_difference, fast, slow)[1]
    spread = rng.dirichlet(np.full(5, 0.5), RUNS)
    concentrated = rng.dirichlet(np.full(5, 20.0 if planted else 0.5), RUNS)
    distances = [pairwise_dissimilarity(x) for x in (concentrated, spread)]
    dissimilar_high = bootstrap_interval(
        lambda x, y: mean_pair_distance(distances[0], x) - mean_pair_distance(distances[1], y),
        np.arange(RUNS),
        np.arange(RUNS),
    )[1]
    return {
        "section 3.3: convergence ratio ≥ 3": ratio_low >= 3,
        "section 3.3: less spread (CV)": spread_high < 0,
        "section 3.3: less dissimilar": dissimilar_high < 0,
    }


def detour_check(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """20 runs over 5 states (start 0, end 4 always visited; 1-3 each visited with chance
    0.6). Null: convergence time independent of the path. Planted: visiting state 2 adds
    1.5 standard deviations. Any detour called under the null is a false alarm; the
    planted one must be found (state 2)."""
    runs = 20
    visits = np.column_stack([np.ones(runs), rng.random((runs, 3)) < 0.6, np.ones(runs)]).astype(
        bool
    )
    occupancy = pd.DataFrame(np.where(visits, rng.dirichlet(np.ones(5), runs) + 0.05, 0.0))
    occupancy = occupancy.div(occupancy.sum(axis=1), axis=0)
    time_ = rng.normal(0, 1, runs) + (1.5 * visits[:, 2] if planted else 0.0)
    convergence = pd.DataFrame({"run": np.arange(runs), "time": 1000 + 100 * time_})
    summary, _ = regress(occupancy, convergence, RegressionOptions())
    found = summary["detours"].split()
    return {"table 2: detours (default regression)": ("2" in found) if planted else bool(found)}


# ---- visual sandbox: ablations, differences of means ---------------------------------


def ablation_checks(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """Four ablations of 16 seeds x 5 values (benchmarks/ablation_test.py's simulation;
    planted effect 1.0 in each), Holm over the four as the report does."""
    effect = 1.0 if planted else 0.0
    pvalues = [ablation_test(simulate_ablation(rng, 16, 5, effect)).pvalue for _ in range(4)]
    adjusted = holm(pvalues)
    return {
        "sandbox: one ablation (Friedman)": pvalues[0] < ALPHA,
        "sandbox: ablations, Holm over 4 (any / share)": (
            np.mean([p < ALPHA for p in adjusted]) if planted else any(p < ALPHA for p in adjusted)
        ),
    }


def difference_check(rng: np.random.Generator, planted: bool) -> dict[str, bool]:
    """Transfer against scratch (8 runs each): final accuracy 1.0 on success, else
    near chance. Null: both succeed with chance 0.4. Planted: transfer with 0.9."""

    def accuracies(success: float) -> np.ndarray:
        return np.where(rng.random(8) < success, 1.0, rng.uniform(0.45, 0.6, 8))

    transfer, scratch = accuracies(0.9 if planted else 0.4), accuracies(0.4)
    low = bootstrap_interval(lambda x, y: float(np.mean(x) - np.mean(y)), transfer, scratch)[0]
    return {"sandbox: transfer beats scratch (mean)": low > 0}


#: Each simulation with its multiple of ``--n``: the cheap ones run more often.
SIMULATIONS: list[tuple[Callable[[np.random.Generator, bool], dict[str, bool]], int]] = [
    (phase_checks, 1),
    (turn_check, 20),
    (exit_check, 20),
    (threshold_checks, 1),
    (detour_check, 1),
    (ablation_checks, 1),
    (difference_check, 1),
]


def calibrate(n: int, seed: int, only: set[str] | None = None) -> list[dict]:
    """False-alarm rate and power of every check over ``n`` (times its multiple)
    simulations each; of the simulations named in ``only`` if given."""
    rows = []
    for index, (simulation, multiple) in enumerate(SIMULATIONS):
        if only and simulation.__name__ not in only:
            continue
        started = time.perf_counter()
        rates = {}
        for planted in (False, True):
            rng = np.random.default_rng([seed, index, planted])
            outcomes = [simulation(rng, planted) for _ in range(n * multiple)]
            for check in outcomes[0]:
                rates.setdefault(check, {})[planted] = float(np.mean([o[check] for o in outcomes]))
        for check, rate in rates.items():
            rows.append(
                {
                    "check": check,
                    "false_alarm": rate[False],
                    "power": rate[True],
                    "simulations": n * multiple,
                }
            )
        print(f"  {simulation.__name__}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=100, help="simulations per truth (cheap checks: a multiple)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    names = [simulation.__name__ for simulation, _ in SIMULATIONS]
    parser.add_argument(
        "--simulation", action="append", choices=names, help="only these (default: all)"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the regression warns on every small simulated fit
    rows = calibrate(args.n, args.seed, set(args.simulation or []))
    print(f"α = {ALPHA}; simulations per truth (null, planted) in the last column")
    print("| check | false-alarm rate | power | simulations |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['check']} | {row['false_alarm']:.3f} | {row['power']:.3f} "
            f"| {row['simulations']} |"
        )
    if args.json:
        print(json.dumps([{k: row[k] for k in ("check", "false_alarm", "power")} for row in rows]))


if __name__ == "__main__":
    main()
