"""Does the analysis recover a known truth? Every scenario of ``trainmap.analysis.synthetic``.

Samples each scenario's runs from its known HMM once per seed, runs the
workflow's analysis functions on them (``trainmap.analysis.recovery.analyse_table``)
with the ``analysis`` section of a config (default ``config/config.yaml``;
``--set key=value`` overrides a setting), and prints per scenario, over the
seeds, rates with 95 % Wilson intervals: k chosen right, raw adjusted Rand index
≥ 0.9, detour precision (over the called detours) and recall (over the true
ones), the false-detour rate (samples calling any state that is not a true
detour) and whether the map's forking is right; and the mean held-out R².

The default seeds, 1000 to 1019, were never used to develop the method (the
tests and the development used seeds 0 to 9)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/recovery.py --quick
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/recovery.py --quick \\
        --config config/paper.yaml --set k_max=8 --jobs 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from statsmodels.stats.proportion import proportion_confint

from trainmap.analysis.recovery import analyse_table, score
from trainmap.analysis.synthetic import SCENARIOS, sample_scenario
from trainmap.jobs import limit_threads

ROOT = Path(__file__).resolve().parents[1]
FRESH_SEEDS = range(1000, 1020)


def settings(config: Path, overrides: list[str], quick: bool) -> dict:
    """The config's analysis section with the schema's defaults filled in, then the overrides."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/analysis.schema.yaml").read_text())
    values = {key: spec["default"] for key, spec in schema["properties"].items()}
    values.update(yaml.safe_load(config.read_text()).get("analysis") or {})
    if quick:
        values.update(restarts=2, bootstrap=200, permutations=199)
    for override in overrides:
        key, _, text = override.partition("=")
        if key not in values:
            raise SystemExit(f"--set {override}: no analysis setting {key!r}")
        values[key] = yaml.safe_load(text)
    return values


def one_sample(task: tuple[int, int, dict]) -> dict:
    """Analyse one scenario's sample of one seed; its scores."""
    index, seed, analysis = task
    limit_threads(1)
    scenario = SCENARIOS[index]
    table = sample_scenario(scenario, seed)
    start = time.perf_counter()
    result = analyse_table(table.drop(columns="state"), scenario.params.metrics, analysis)
    seconds = time.perf_counter() - start
    return {"seed": seed, **score(scenario, table, result, analysis), "seconds": seconds}


def rate(successes: int, trials: int) -> str:
    """``share [low, high]`` with the 95 % Wilson interval; ``–`` with no trials."""
    if not trials:
        return "–"
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return f"{successes / trials:.2f} [{low:.2f}, {high:.2f}]"


def summarise(samples: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, the rates over its samples."""
    rows = []
    for name, group in samples.groupby("scenario", sort=False):
        n = len(group)
        rows.append(
            {
                "scenario": name,
                "runs": int(group["runs"].iloc[0]),
                "samples": n,
                "true k": int(group["true_k"].iloc[0]),
                "k right": rate(int((group["chosen_k"] == group["true_k"]).sum()), n),
                "ARI ≥ 0.9": rate(int((group["ari"] >= 0.9).sum()), n),
                "detour precision": rate(
                    int(group["detours_correct"].sum()), int(group["detours_called"].sum())
                ),
                "detour recall": rate(
                    int(group["true_detours_found"].sum()),
                    int(group["true_detours"].sum()),
                ),
                "false detour": rate(int((group["false_detours"] != "").sum()), n),
                "fork right": rate(int((group["forking"] == group["true_forking"]).sum()), n),
                "held-out R²": f"{np.nanmean(group['rsquared_heldout']):.2f}",
                "seconds": f"{group['seconds'].mean():.1f}",
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quick", action="store_true", help="2 restarts, fewer resamples")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs=2,
        default=(FRESH_SEEDS.start, len(FRESH_SEEDS)),
        metavar=("FIRST", "COUNT"),
        help="sample seeds FIRST .. FIRST + COUNT - 1 (default: the fresh block 1000-1019)",
    )
    parser.add_argument("--scenario", action="append", help="only these scenarios (by name)")
    parser.add_argument("--jobs", type=int, default=1, help="samples analysed at once")
    parser.add_argument("--csv", type=Path, help="also write every sample's scores here")
    args = parser.parse_args()
    analysis = settings(args.config, args.set, args.quick)
    print("analysis settings:", {k: analysis[k] for k in sorted(analysis)})
    first, count = args.seeds
    print(f"seeds {first}..{first + count - 1}")
    names = [s.name for s in SCENARIOS]
    unknown = set(args.scenario or []) - set(names)
    if unknown:
        raise SystemExit(f"--scenario: no scenario {sorted(unknown)}; known: {names}")
    chosen = [names.index(name) for name in args.scenario] if args.scenario else range(len(names))
    tasks = [(i, seed, analysis) for i in chosen for seed in range(first, first + count)]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = []
        for row in pool.map(one_sample, tasks):
            rows.append(row)
            if args.csv:  # after every sample, so that a stopped run keeps what it did
                pd.DataFrame(rows).to_csv(args.csv, index=False)
            print(
                f"{row['scenario']} seed {row['seed']}: k {row['chosen_k']}/{row['true_k']}, "
                f"ARI {row['ari']:.2f}, detours called {row['detours_called']} "
                f"(false: {row['false_detours'] or 'none'}), {row['seconds']:.0f} s",
                flush=True,
            )
    samples = pd.DataFrame(rows)
    print()
    print(summarise(samples).to_markdown(index=False))


if __name__ == "__main__":
    main()
