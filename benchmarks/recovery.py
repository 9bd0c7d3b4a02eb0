"""Does the analysis recover a known truth? Every scenario of ``trainmap.analysis.synthetic``.

Samples each scenario's runs from its known HMM, runs the workflow's analysis
functions on them (``trainmap.analysis.recovery.analyse_table``) with the
``analysis`` section of a config (default ``config/config.yaml``; ``--set
key=value`` overrides a setting), and prints per scenario: true and chosen k,
the adjusted Rand index of the decoded states (raw, no merging), detour
precision and recall (and the recall of the same regression on the true
states, the sample's power), the false detours, whether the map forks (true and
found), and wall time. Run it twice, with and without overrides, to compare
settings on the same samples::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/recovery.py --quick
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/recovery.py --quick \\
        --set normalization=per_run --set selection=holdout
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from trainmap.analysis.recovery import analyse_table, score
from trainmap.analysis.synthetic import SCENARIOS, sample_scenario
from trainmap.jobs import limit_threads

ROOT = Path(__file__).resolve().parents[1]


def settings(config: Path, overrides: list[str], quick: bool) -> dict:
    """The config's analysis section with the schema's defaults filled in, then the overrides."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/analysis.schema.yaml").read_text())
    values = {key: spec["default"] for key, spec in schema["properties"].items()}
    values.update(yaml.safe_load(config.read_text()).get("analysis") or {})
    if quick:
        values.update(restarts=2, bootstrap=200)
    for override in overrides:
        key, _, text = override.partition("=")
        if key not in values:
            raise SystemExit(f"--set {override}: no analysis setting {key!r}")
        values[key] = yaml.safe_load(text)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quick", action="store_true", help="2 restarts, 200 bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled runs")
    parser.add_argument("--scenario", action="append", help="only these scenarios (by name)")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args()
    limit_threads(1)
    analysis = settings(args.config, args.set, args.quick)
    print("analysis settings:", {k: analysis[k] for k in sorted(analysis)})
    rows = []
    for scenario in SCENARIOS:
        if args.scenario and scenario.name not in args.scenario:
            continue
        table = sample_scenario(scenario, args.seed)
        start = time.perf_counter()
        result = analyse_table(table.drop(columns="state"), scenario.params.metrics, analysis)
        seconds = time.perf_counter() - start
        rows.append({**score(scenario, table, result, analysis), "seconds": seconds})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    out = pd.DataFrame(rows)
    print()
    print(out.to_markdown(index=False, floatfmt=".2f"))
    if args.csv:
        out.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
