"""Throughput of the batched sandbox trainer against training the same runs one at a time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sandbox_batched.py --runs 16 --epochs 3

Both use the paper's default run (n = 2048, batch 32, d = 2, h = 32) and the same seeds
and learning rates (a small lr grid, as in the ablations); each measures full epochs
including the per-epoch evaluation on the train and test sets. Prints runs x epochs per
second of each and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.trainer import Trainer


def throughput(specs: list[JobSpec]) -> float:
    """Runs x epochs per second of training ``specs`` one after the other."""
    trainers = [Trainer(spec, "cpu") for spec in specs]
    start = time.perf_counter()
    for trainer in trainers:
        trainer.fit()
    seconds = time.perf_counter() - start
    return sum(len(s.seeds) * s.epochs for s in specs) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = tuple(range(args.runs))
    lrs = tuple(3e-3 * (1 + i % 4) for i in seeds)
    common = {"epochs": args.epochs, "batch_size": args.batch_size}
    batched = throughput([JobSpec(seeds, lrs, (1.0,) * args.runs, **common)])
    alone = throughput(
        [JobSpec((s,), (lr,), (1.0,), **common) for s, lr in zip(seeds, lrs, strict=True)]
    )
    print(f"runs={args.runs} epochs={args.epochs} batch={args.batch_size} threads={args.threads}")
    print(f"batched:          {batched:8.2f} runs x epochs / s")
    print(f"one at a time:    {alone:8.2f} runs x epochs / s")
    print(f"ratio:            {batched / alone:8.2f}x")


if __name__ == "__main__":
    main()
