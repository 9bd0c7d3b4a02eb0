"""Power and false-alarm rate of the sandbox ablation test on ablations with a known answer.

    .venv/bin/python benchmarks/ablation_test.py --seeds 16 --values 5 --trials 2000

Simulated like the d = 2 sandbox: a seed's luck decides whether its runs escape the saddle
at most values (success, accuracy ~1) or end near chance (accuracy 0.5 plus a small
learning), and the hyperparameter shifts the chance of success a little around each
seed's own. With ``--effect 0`` the values do not matter (the truth is "no dependence"),
so the rejection rate at p < 0.05 is the false-alarm rate; with an effect it is the
power. Each row compares the paired test the fidelity report uses
(``trainmap.sandbox.analysis.ablation_test``: Friedman within seeds) with the unpaired
Kruskal-Wallis test it replaced, on the same simulated ablations.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from trainmap.sandbox.analysis import ablation_test


def simulate(rng: np.random.Generator, seeds: int, values: int, effect: float) -> pd.DataFrame:
    """Final accuracy (seeds x values) of one simulated ablation."""
    luck = rng.normal(0.0, 1.5, size=(seeds, 1))  # shared by a seed's runs at every value
    shift = effect * np.sin(np.linspace(0, np.pi, values))  # best in the middle of the grid
    logit = -1.0 + luck + shift + rng.normal(0.0, 0.5, size=(seeds, values))
    success = rng.random((seeds, values)) < 1 / (1 + np.exp(-logit))
    partial = np.clip(0.5 + 0.1 * (luck + shift) + rng.normal(0, 0.03, (seeds, values)), 0.45, 0.9)
    return pd.DataFrame(np.where(success, 1.0, partial))


def rejection_rates(
    seeds: int, values: int, effect: float, trials: int, seed: int
) -> tuple[float, float]:
    """Share of simulated ablations with p < 0.05: paired, unpaired."""
    rng = np.random.default_rng(seed)
    paired = unpaired = 0
    for _ in range(trials):
        test = ablation_test(simulate(rng, seeds, values, effect))
        paired += test.pvalue < 0.05
        unpaired += test.unpaired_pvalue < 0.05
    return paired / trials, unpaired / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--values", type=int, default=5)
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.seeds} seeds x {args.values} values, {args.trials} simulated ablations each")
    print("| effect | truth | Friedman (paired) rejects | Kruskal-Wallis rejects |")
    print("| --- | --- | --- | --- |")
    for effect in args.effects:
        paired, unpaired = rejection_rates(args.seeds, args.values, effect, args.trials, args.seed)
        truth = "no dependence" if effect == 0 else "dependence"
        print(f"| {effect:g} | {truth} | {paired:.3f} | {unpaired:.3f} |")


if __name__ == "__main__":
    main()
