"""What pinned kernel paths cost: training time with ``numerics: pinned`` against native.

For each setting, trains its first job's seeds for ``--epochs`` epochs in a fresh
process per mode (the kernel paths are chosen when torch loads): native (this CPU's
fastest paths) and pinned (trainmap.numerics). Prints seconds of training (imports
and data excluded by a warm-up epoch in the same process) and the pinned/native ratio.

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
from trainmap.tables import to_markdown

# One timed training run in a fresh process: the kernel paths are fixed when torch loads.
RUN = """
import json, sys, time
import torch
from trainmap.numerics import pin_numerics
from trainmap.training.trainer import train_seeds

pin_numerics(sys.argv[1])
setting, seeds = json.loads(sys.argv[2]), json.loads(sys.argv[3])
warm = {**setting, "training": {**setting["training"], "epochs": 1}}
train_seeds(warm, seeds, device="cpu")
start = time.perf_counter()
train_seeds(setting, seeds, device="cpu")
print(time.perf_counter() - start, torch.backends.cpu.get_cpu_capability())
"""


def seconds(setting: dict, seeds: list[int], mode: str, threads: int) -> tuple[float, str]:
    """Training seconds of ``seeds`` under ``numerics: mode``, and ATen's capability."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    for name in PINNED_ENVIRONMENT:
        env.pop(name, None)
    if mode == "pinned":
        env.update(PINNED_ENVIRONMENT)
    out = subprocess.run(
        [sys.executable, "-c", RUN, mode, json.dumps(setting), json.dumps(seeds)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-2]), out[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--settings", nargs="*", help="default: every setting of the config")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    config = yaml.safe_load(open(args.config))
    rows = []
    for name in args.settings or config["settings"]:
        setting = config["settings"][name]
        setting["training"].update(epochs=args.epochs, log_every_seconds=float("inf"))
        seeds = list(range(setting["seeds_per_job"]))
        native, capability = seconds(setting, seeds, "native", args.threads)
        pinned, pinned_capability = seconds(setting, seeds, "pinned", args.threads)
        rows.append(
            {
                "setting": name,
                "seeds": len(seeds),
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
