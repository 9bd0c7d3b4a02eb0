"""What pinned kernel paths cost: training time with ``numerics: pinned`` against native.

For each setting, trains its first job's seeds, and the sandbox's ``base`` job, for
``--epochs`` epochs in a fresh process per mode (the kernel paths are chosen when
torch loads): native (this CPU's fastest paths) and pinned (trainmap.numerics).
Prints seconds of training (after a one-epoch warm-up in the same process) and the
pinned/native ratio.

    python benchmarks/pinned_numerics.py --config config/config.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pandas as pd
import yaml

from trainmap.numerics import PINNED_ENVIRONMENT
from trainmap.sandbox.plan import plan_jobs
from trainmap.tables import to_markdown

# One timed training run in a fresh process: the kernel paths are fixed when torch loads.
# A setting's first job (train_seeds) or a sandbox job (its JobSpec's fields).
RUN = """
import json, sys, time
import torch
from trainmap.numerics import pin_numerics
from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.trainer import Trainer
from trainmap.training.trainer import train_seeds

pin_numerics(sys.argv[1])
kind, job = sys.argv[2], json.loads(sys.argv[3])
if kind == "sandbox":
    spec = JobSpec(**{**job, "epochs": 1})
    Trainer(spec, "cpu").fit()
    trainer = Trainer(JobSpec(**job), "cpu")
    start = time.perf_counter()
    trainer.fit()
else:
    setting, seeds = job
    train_seeds({**setting, "training": {**setting["training"], "epochs": 1}}, seeds, device="cpu")
    start = time.perf_counter()
    train_seeds(setting, seeds, device="cpu")
print(time.perf_counter() - start, torch.backends.cpu.get_cpu_capability())
"""


def seconds(kind: str, job: object, mode: str, threads: int) -> tuple[float, str]:
    """Training seconds of a job under ``numerics: mode``, and ATen's capability."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    for name in PINNED_ENVIRONMENT:
        env.pop(name, None)
    if mode == "pinned":
        env.update(PINNED_ENVIRONMENT)
    out = subprocess.run(
        [sys.executable, "-c", RUN, mode, kind, json.dumps(job)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-2]), out[-1]


def jobs(config: dict, names: list[str] | None, epochs: int) -> dict[str, tuple[str, object]]:
    """Each named setting's first job and each named sandbox job, cut to ``epochs``."""
    planned = plan_jobs(config["sandbox"]) if config.get("sandbox") else {}
    out = {}
    for name in names or [*config["settings"], "base"]:
        if name in config["settings"]:
            setting = config["settings"][name]
            setting["training"].update(epochs=epochs, log_every_seconds=float("inf"))
            out[name] = ("setting", (setting, list(range(setting["seeds_per_job"]))))
        else:
            spec = {**planned[name].to_dict(), "epochs": epochs, "snapshot_every": 0}
            out[f"sandbox {name}"] = ("sandbox", spec)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument(
        "--jobs", nargs="*", help="settings and sandbox jobs (default: every setting, sandbox base)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="epochs per seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    config = yaml.safe_load(open(args.config))
    rows = []
    for name, (kind, job) in jobs(config, args.jobs, args.epochs).items():
        native, capability = seconds(kind, job, "native", args.threads)
        pinned, pinned_capability = seconds(kind, job, "pinned", args.threads)
        rows.append(
            {
                "job": name,
                "epochs": args.epochs,
                f"native s ({capability})": round(native, 2),
                f"pinned s ({pinned_capability})": round(pinned, 2),
                "pinned / native": round(pinned / native, 2),
            }
        )
        print(to_markdown(pd.DataFrame(rows[-1:])), flush=True)
    print(f"\n{args.threads} thread(s); pinned: {PINNED_ENVIRONMENT}, oneDNN off")
    print(to_markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
