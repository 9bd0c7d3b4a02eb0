"""Every trainer against the machine's own limit, and what a config costs on this machine.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hardware_limit.py --config config/paper.yaml

Prints, all measured in this one run on ``--threads`` threads:

1. the fp32 matmul peak (best of square ``torch.mm`` sizes) on the kernel paths of the
   config's ``numerics`` (pinned: AVX2, as its jobs run), the limit below;
2. for each Hu setting of the config and for the sandbox's default run: FLOPs per
   seed-epoch counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmul FLOPs of
   training steps and checkpoint evaluations, as the trainer runs them), seed-epochs/s
   one at a time (one seed per job) and batched at several member counts, the batched /
   one-at-a-time ratio, the achieved FLOP/s and its fraction of the peak;
3. a grid of learning rates of one Hu setting (``--grid-setting``): its seeds at every
   value as the members of one job, against one job per value;
4. each training job of the config's Hu settings (``seeds_per_job`` members, always
   among the member counts measured): its fraction of the peak and projected seconds;
5. the projected wall time of each part of the config, one job after another on one
   thread: runs (seeds, times the grid points of a setting with a ``grid:``) x epochs at
   the rate measured at the config's members per job (or the largest count measured
   below it). Sandbox jobs are grouped by shape; each shape is
   timed for one epoch on a quarter of its sequences and scaled by 4 (time is linear in
   the number of sequences at a fixed batch size), so its projection is an estimate.

The 40-run replicate's jobs, every setting of it:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hardware_limit.py --config config/replicate.yaml \
        --settings modular modular_stabilized parities mnist cifar100 cifar100_destabilized \
        --members 5 10 20 40 --grid-setting ''

The Hu settings train ``--epochs`` epochs per measurement (default: each setting's
``checkpoint_every``, so one checkpoint evaluation per measurement besides step 0).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

from trainmap.numerics import PINNED_ENVIRONMENT, pin_numerics


def numerics_mode(argv: list[str]) -> str:
    """The ``numerics`` of the ``--config`` in ``argv``: measured on the kernel paths its
    jobs use (pinned convolutions run without oneDNN, several times slower)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", default="config/paper.yaml")
    with open(parser.parse_known_args(argv)[0].config) as file:
        return yaml.safe_load(file).get("numerics", "pinned")


# Kernel paths are chosen when torch loads: a pinned config's are set before, as the
# Snakefile sets them for its jobs.
if numerics_mode(sys.argv[1:]) == "pinned" and any(
    os.environ.get(key) != value for key, value in PINNED_ENVIRONMENT.items()
):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **PINNED_ENVIRONMENT})

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from trainmap.jobs import limit_threads  # noqa: E402
from trainmap.sandbox.plan import MEMBER_KEYS, JobSpec, plan_jobs  # noqa: E402
from trainmap.sandbox.trainer import Trainer  # noqa: E402
from trainmap.tables import to_markdown  # noqa: E402
from trainmap.training.grid import grid_values  # noqa: E402
from trainmap.training.trainer import train_seeds  # noqa: E402


def matmul_peak(sizes: tuple[int, ...] = (256, 512, 1024, 2048), seconds: float = 0.5) -> float:
    """Best fp32 FLOP/s of square matrix products on the current threads."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            calls += 1
        best = max(best, 2 * n**3 * calls / (time.perf_counter() - start))
    return best


def timed(train: Callable[[], Any]) -> float:
    start = time.perf_counter()
    train()
    return time.perf_counter() - start


def counted_flops(train: Callable[[], Any]) -> int:
    with FlopCounterMode(display=False) as counter:
        train()
    return counter.get_total_flops()


def hu_setting(config: dict, name: str, epochs: int | None) -> dict:
    setting = copy.deepcopy(config["settings"][name])
    training = setting["training"]
    training["epochs"] = epochs or training["checkpoint_every"]
    training["log_every_seconds"] = float("inf")
    return setting


def hu_rows(config: dict, names: list[str], counts: list[int], epochs: int | None) -> list[dict]:
    """One row per (setting, member count) of the Hu trainer."""
    rows = []
    for name in names:
        setting = hu_setting(config, name, epochs)
        n_epochs = setting["training"]["epochs"]
        flops = counted_flops(lambda s=setting: train_seeds(s, [0], device="cpu")) / n_epochs
        seeds = config["settings"][name]["seeds"]
        per_job = members_per_job(name, config["settings"][name])
        for members in sorted({1, per_job, *[c for c in counts if c <= seeds]}):
            seeds = list(range(members))
            seconds = timed(lambda s=setting, seeds=seeds: train_seeds(s, seeds, device="cpu"))
            rows.append(row(name, members, members * n_epochs / seconds, flops))
    return rows


def grid_rows(config: dict, name: str, seeds: int, factors: list[float], epochs: int | None):
    """Seconds to train ``seeds`` seeds at every learning rate ``factors`` x the setting's
    as one job (members = seeds x values), and as one job per value."""
    setting = hu_setting(config, name, epochs)
    lrs = [setting["optimizer"]["lr"] * f for f in factors]
    grid = {**setting, "grid": {"lr": lrs}}
    together = timed(lambda: train_seeds(grid, range(seeds), device="cpu"))
    apart = 0.0
    for lr in lrs:
        single = {**setting, "optimizer": {**setting["optimizer"], "lr": lr}}
        apart += timed(lambda s=single: train_seeds(s, range(seeds), device="cpu"))
    return {
        "setting": name,
        "seeds x lr values": f"{seeds} x {len(lrs)}",
        "one job (s)": together,
        "one job per value (s)": apart,
        "speed-up": apart / together,
    }


def sandbox_job(spec: JobSpec, members: int, **changes: Any) -> JobSpec:
    seeds = tuple(range(members))
    per_member = {key: (getattr(spec, key)[0],) * members for key in MEMBER_KEYS}
    return dataclasses.replace(spec, seeds=seeds, init_from=None, **per_member, **changes)


def sandbox_rate(spec: JobSpec) -> float:
    trainer = Trainer(spec, "cpu")
    return len(spec.seeds) * spec.epochs / timed(trainer.fit)


def sandbox_flops(spec: JobSpec) -> float:
    """Counted FLOPs per run-epoch of ``spec`` (one member, initial evaluation excluded)."""
    one, start = (Trainer(sandbox_job(spec, 1, epochs=e), "cpu") for e in (1, 0))
    return counted_flops(one.fit) - counted_flops(start.fit)


def sandbox_rows(default: JobSpec, counts: list[int], epochs: int) -> list[dict]:
    flops = sandbox_flops(default)
    return [
        row("sandbox default", m, sandbox_rate(sandbox_job(default, m, epochs=epochs)), flops)
        for m in sorted({1, *counts})
    ]


def grid_points(name: str, setting: dict) -> int:
    return len(grid_values(name, setting.get("grid")))


def members_per_job(name: str, setting: dict) -> int:
    """Members of one training job of ``setting``: its seeds per job at every grid point."""
    return (setting.get("seeds_per_job") or setting["seeds"]) * grid_points(name, setting)


def job_rows(config: dict, names: list[str], measured: pd.DataFrame) -> pd.DataFrame:
    """One row per Hu setting: its training jobs as the config plans them."""
    rows = []
    for name in names:
        setting = config["settings"][name]
        per_job = members_per_job(name, setting)
        shape = measured[(measured.trainer == name) & (measured.members == per_job)].iloc[0]
        rows.append(
            {
                "setting": name,
                "jobs": math.ceil(setting["seeds"] * grid_points(name, setting) / per_job),
                "members per job": per_job,
                "of peak": shape["of peak"],
                "projected s per job": per_job
                * setting["training"]["epochs"]
                / shape["seed-epochs/s"],
            }
        )
    return pd.DataFrame(rows)


def row(name: str, members: int, rate: float, flops: float) -> dict:
    return {"trainer": name, "members": members, "seed-epochs/s": rate, "FLOP/seed-epoch": flops}


def projection(config: dict, hu: pd.DataFrame, project_members: int) -> pd.DataFrame:
    """Projected one-thread wall time of each part of ``config``."""
    rows = []
    for name, setting in config.get("settings", {}).items():
        measured = hu[hu.trainer == name]
        if measured.empty:
            continue
        points = grid_points(name, setting)
        per_job = members_per_job(name, setting)
        usable = measured[measured.members <= per_job]
        rate = usable.sort_values("members")["seed-epochs/s"].iloc[-1]
        seed_epochs = setting["seeds"] * points * setting["training"]["epochs"]
        rows.append({"part": name, "seed-epochs": seed_epochs, "hours": seed_epochs / rate / 3600})
    if "sandbox" in config:
        shapes: dict[tuple, list[tuple[str, JobSpec]]] = {}
        for job, spec in plan_jobs(config["sandbox"]).items():
            key = (spec.batch_size, spec.hidden, spec.d, spec.n, spec.n_test, spec.p)
            shapes.setdefault(key, []).append((job, spec))
        parts: dict[str, dict[str, float]] = {}
        for jobs in shapes.values():
            spec = jobs[0][1]
            members = min(max(len(s.seeds) for _, s in jobs), project_members)
            quarter = {"n": max(1, spec.n // 4), "n_test": max(1, spec.n_test // 4)}
            batch = spec.batch_size if spec.batch_size > 0 else spec.n
            quarter["batch_size"] = min(batch, quarter["n"])
            rate = sandbox_rate(sandbox_job(spec, members, epochs=1, **quarter)) / 4
            for job, s in jobs:
                part = parts.setdefault(f"sandbox {job.split('.')[0]} (estimate)", {"work": 0})
                part["work"] += len(s.seeds) * s.epochs
                part["hours"] = part.get("hours", 0.0) + len(s.seeds) * s.epochs / rate / 3600
        rows += [
            {"part": k, "seed-epochs": v["work"], "hours": v["hours"]} for k, v in parts.items()
        ]
    table = pd.DataFrame(rows)
    total = {"part": "total", "seed-epochs": table["seed-epochs"].sum(), "hours": table.hours.sum()}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/paper.yaml")
    parser.add_argument(
        "--settings", nargs="*", default=["modular", "modular_stabilized", "parities"]
    )
    parser.add_argument("--members", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--sandbox-members", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--epochs", type=int, default=None, help="Hu epochs per measurement")
    parser.add_argument("--sandbox-epochs", type=int, default=2)
    parser.add_argument("--project-members", type=int, default=64, help="sandbox projection")
    parser.add_argument("--grid-setting", default="modular", help="'' skips the grid")
    parser.add_argument("--grid-seeds", type=int, default=10)
    parser.add_argument("--grid-lr-factors", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    parser.add_argument("--no-projection", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_threads(args.threads)
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(open(args.config))

    print(pin_numerics(config.get("numerics", "pinned")))
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    rows = hu_rows(config, args.settings, args.members, args.epochs)
    if "sandbox" in config:
        sandbox = config["sandbox"].get("defaults", {})
        default = plan_jobs({"defaults": {**sandbox, "seeds": 1}, "experiments": {"d": {}}})["d"]
        rows += sandbox_rows(default, args.sandbox_members, args.sandbox_epochs)
    table = pd.DataFrame(rows)
    alone = table[table.members == 1].set_index("trainer")["seed-epochs/s"]
    table["vs one at a time"] = table["seed-epochs/s"] / table.trainer.map(alone)
    table["GFLOP/s"] = table["seed-epochs/s"] * table["FLOP/seed-epoch"] / 1e9
    table["of peak"] = table["GFLOP/s"] * 1e9 / peak
    table["FLOP/seed-epoch"] = table["FLOP/seed-epoch"].map(lambda f: f"{f:.3g}")
    print(to_markdown(table.round(3)), flush=True)
    print(f"\nThe training jobs of {args.config}:")
    print(to_markdown(job_rows(config, args.settings, table).round(3)), flush=True)
    if args.grid_setting:
        print(f"\nA learning-rate grid of {args.grid_setting}: one job against one per value")
        grid = grid_rows(
            config, args.grid_setting, args.grid_seeds, args.grid_lr_factors, args.epochs
        )
        print(to_markdown(pd.DataFrame([grid]).round(3)), flush=True)
    if not args.no_projection:
        print(f"\nProjected wall time of {args.config}, one job after another on one thread:")
        print(to_markdown(projection(config, table, args.project_members).round(3)))


if __name__ == "__main__":
    main()
