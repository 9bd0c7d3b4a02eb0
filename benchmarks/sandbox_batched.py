"""Throughput of the batched sandbox trainer by number of members in one job.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sandbox_batched.py --members 1 8 64 256 --epochs 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sandbox_batched.py --members 1 8 64 256 --json

Every job is the paper's default run (n = 2048, batch 32, d = 2, h = 32) with seeds
0..M-1 and a small learning-rate grid (as in the ablations); the time is ``fit()``: full
epochs including the per-epoch evaluation on the train and test sets, not the data
draw. Member counts are measured round-robin, ``--repeats`` times, in one process, and
the median is reported, so that a busy machine slows all of them alike. Training runs
one at a time is the ``members = 1`` rate, so the ratio column is batched over one at a
time. ``--json`` prints only a JSON list of ``{"members": M, "run_epochs_per_s": X}``.
``--profile`` adds, for the largest member count, torch's profile of one epoch: the
operators that take the time, which names the limit that remains.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.trainer import Trainer


def default_job(members: int, epochs: int, batch_size: int = 32) -> JobSpec:
    """The paper's default run, ``members`` seeds with a small lr grid."""
    seeds = tuple(range(members))
    lrs = tuple(3e-3 * (1 + i % 4) for i in seeds)
    no_decay = (0.0,) * members
    return JobSpec(seeds, lrs, (1.0,) * members, no_decay, epochs=epochs, batch_size=batch_size)


def run_epochs_per_s(spec: JobSpec) -> float:
    """Runs x epochs per second of training ``spec`` (construction not timed)."""
    trainer = Trainer(spec, "cpu")
    start = time.perf_counter()
    trainer.fit()
    return len(spec.seeds) * spec.epochs / (time.perf_counter() - start)


def measure(members: list[int], epochs: int, repeats: int, batch_size: int) -> dict[int, float]:
    """Median run-epochs/s of each member count, measured round-robin."""
    rates: dict[int, list[float]] = {m: [] for m in members}
    for _ in range(repeats):
        for m in members:
            rates[m].append(run_epochs_per_s(default_job(m, epochs, batch_size)))
    return {m: statistics.median(r) for m, r in rates.items()}


def profile_epoch(members: int, batch_size: int, rows: int = 15) -> str:
    """torch's table of the operators of one training epoch at ``members``, by own CPU time."""
    from torch.profiler import ProfilerActivity, profile

    trainer = Trainer(default_job(members, 1, batch_size), "cpu")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.fit()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print only the JSON list")
    parser.add_argument("--profile", action="store_true", help="profile the largest count")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates = measure(args.members, args.epochs, args.repeats, args.batch_size)
    if args.json:
        print(
            json.dumps([{"members": m, "run_epochs_per_s": round(r, 2)} for m, r in rates.items()])
        )
        return
    setting = f"epochs={args.epochs} batch={args.batch_size} threads={args.threads}"
    print(f"{setting} (median of {args.repeats})")
    alone = rates.get(1)
    for m, rate in rates.items():
        ratio = f"{rate / alone:7.1f}x one at a time" if alone else ""
        print(f"members={m:5d} {rate:9.1f} run-epochs/s {ratio}")
    if args.profile:
        print(f"\nOne epoch at {max(rates)} members, operators by own CPU time:")
        print(profile_epoch(max(rates), args.batch_size))


if __name__ == "__main__":
    main()
