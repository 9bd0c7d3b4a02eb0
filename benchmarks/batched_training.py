"""Throughput of the batched trainer against training the same seeds one after another.

For each setting, trains ``--seeds`` seeds for ``--epochs`` epochs twice, in one
process: as one batched job (``train_seeds(setting, seeds)``) and as a sequential
baseline (``train_seeds(setting, [s])`` for each seed in turn), with the setting's
own checkpointing, and prints seed-epochs per second and the batched/sequential ratio.

    OMP_NUM_THREADS=1 python benchmarks/batched_training.py --config config/config.yaml
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
import torch
import yaml

from trainmap.jobs import limit_threads
from trainmap.tables import to_markdown
from trainmap.training.trainer import train_seeds


def seed_epochs_per_second(setting: dict, seeds: list[int], batched: bool, device: str) -> float:
    """Seed-epochs per second of training ``seeds``, batched or one seed at a time."""
    start = time.perf_counter()
    if batched:
        train_seeds(setting, seeds, device=device)
    else:
        for seed in seeds:
            train_seeds(setting, [seed], device=device)
    return len(seeds) * setting["training"]["epochs"] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    algorithmic = ["modular", "modular_stabilized", "parities"]
    parser.add_argument("--settings", nargs="*", default=algorithmic)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..n-1")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    limit_threads(args.threads)

    config = yaml.safe_load(open(args.config))
    rows = []
    for name in args.settings:
        setting = copy.deepcopy(config["settings"][name])
        setting["training"]["epochs"] = args.epochs
        setting["training"]["log_every_seconds"] = float("inf")
        seeds = list(range(args.seeds))
        train_seeds(setting, [0], device=args.device)  # warm up (imports, allocator)
        sequential = seed_epochs_per_second(setting, seeds, False, args.device)
        batched = seed_epochs_per_second(setting, seeds, True, args.device)
        rows.append(
            {
                "setting": name,
                "seeds": args.seeds,
                "epochs": args.epochs,
                "sequential seed-epochs/s": round(sequential, 1),
                "batched seed-epochs/s": round(batched, 1),
                "batched / sequential": round(batched / sequential, 2),
            }
        )
        print(to_markdown(pd.DataFrame(rows[-1:])), flush=True)
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), device {args.device}")
    print(to_markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
