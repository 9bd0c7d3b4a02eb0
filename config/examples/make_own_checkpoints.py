"""Make an example folder of checkpoints, as a user's own training script would.

Trains a few seeds of a small MLP on scikit-learn's digits with a plain PyTorch
loop and saves ``torch.save(model.state_dict(), ...)`` every few steps, in the
layout the checkpoint reader expects by default (``<run>/step_<n>.pt``), plus a
``scores.csv`` of evaluation accuracy per run and step. Then analyse it with
``config/examples/own_checkpoints.yaml`` (README, "Analyse a folder of checkpoints")::

    .venv/bin/python config/examples/make_own_checkpoints.py data/own_checkpoints
"""

import argparse
import csv
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path)
parser.add_argument("--seeds", type=int, default=16)
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--every", type=int, default=5)
args = parser.parse_args()

digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16
y = torch.tensor(digits.target)
split = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, test = split[500:], split[:500]

rows = []
for seed in range(args.seeds):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = args.folder / f"seed_{seed}"
    run.mkdir(parents=True, exist_ok=True)
    for step in range(args.steps + 1):
        if step % args.every == 0:
            torch.save(model.state_dict(), run / f"step_{step}.pt")
            with torch.no_grad():
                accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
            rows.append({"run": run.name, "step": step, "eval_acc": accuracy})
        batch = train[torch.randint(len(train), (32,))]
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

with open(args.folder / "scores.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["run", "step", "eval_acc"])
    writer.writeheader()
    writer.writerows(rows)
print(f"{len(rows)} checkpoints of {args.seeds} runs in {args.folder}")
