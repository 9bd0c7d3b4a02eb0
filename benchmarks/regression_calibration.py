"""False alarms and power of the convergence regression on occupancies with a known answer.

Each sample: ``--runs`` runs start in state 0 and end in state 2; ``v`` of them
pass through state 1 (a branch). Under the null, convergence times are noise,
independent of the states; under the planted effect, the branch's runs converge
``--effect`` standard deviations later. Per number of visitors, over
``--samples`` samples, prints the share of samples that call state 1 a detour
with the config's rule and with ``min_detour_runs: 1`` (no minimum), and, with
8 states visited at random, the mean in-sample and held-out R² of noise and the
share of permutation p-values below 0.05::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/regression_calibration.py
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from trainmap.analysis import regression
from trainmap.analysis.synthetic import branch_occupancy
from trainmap.jobs import limit_threads


def detour_rates(args: argparse.Namespace, visitors: int) -> dict:
    """Share of samples calling state 1 a detour, null and planted, with and without a minimum."""
    rng = np.random.default_rng([args.seed, visitors])
    rules = {
        "min 3": regression.RegressionOptions(bootstrap=args.bootstrap),
        "no minimum": regression.RegressionOptions(bootstrap=args.bootstrap, min_detour_runs=1),
    }
    calls = {f"{effect} {rule}": 0 for effect in ("null", "planted") for rule in rules}
    for _ in range(args.samples):
        occupancy = branch_occupancy(rng, args.runs, visitors)
        noise = rng.normal(0, 1, args.runs)
        for effect, shift in (("null", 0.0), ("planted", args.effect)):
            time = 10 + noise + shift * (occupancy[1] > 0).to_numpy()
            convergence = pd.DataFrame({"run": occupancy.index, "time": time, "converged": True})
            for rule, options in rules.items():
                _, coefficients = regression.regress(occupancy, convergence, options)
                calls[f"{effect} {rule}"] += int(coefficients["detour"].iloc[1])
    return {"visitors": visitors, **{k: v / args.samples for k, v in calls.items()}}


def noise_rsquared(args: argparse.Namespace) -> dict:
    """In-sample and held-out R² and permutation p-values of noise on 8 random states."""
    rng = np.random.default_rng([args.seed, 99])
    rows = []
    for _ in range(args.samples):
        X = rng.dirichlet(np.full(8, 0.5), args.runs)
        y = rng.normal(size=args.runs)
        rows.append(
            (
                regression._r_squared(X, y)[1],
                regression.held_out_rsquared(X, y),
                regression.permutation_pvalue(X, y, 199, int(rng.integers(1 << 31))),
            )
        )
    r2, held, p = np.array(rows).T
    return {
        "in-sample R²": r2.mean(),
        "held-out R²": held.mean(),
        "permutation p < 0.05": (p < 0.05).mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--effect", type=float, default=2.0, help="planted slowdown, in sd")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    limit_threads(1)
    table = pd.DataFrame([detour_rates(args, v) for v in (1, 2, 3, 4, 8)])
    print(f"Detour calls on state 1 over {args.samples} samples of {args.runs} runs")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print()
    print(f"Noise on 8 states, {args.runs} runs, {args.samples} samples")
    print(pd.DataFrame([noise_rsquared(args)]).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
