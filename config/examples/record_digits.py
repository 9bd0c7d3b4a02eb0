"""Record the 14 metrics while training, as a user's own training script would.

Trains ``--seeds`` seeds of a small MLP on scikit-learn's digits with a plain
PyTorch loop; one :class:`trainmap.record.MetricsRecorder` per seed measures the
weights every ``--every`` steps, with the train and evaluation losses and
accuracies and the per-example losses of 64 fixed test digits, into
``<folder>/<seed>/``. No checkpoint is saved. Then analyse the folder with
``config/examples/record_digits.yaml`` (README, "Record while you train")::

    .venv/bin/python config/examples/record_digits.py data/record_digits
"""

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from trainmap.record import MetricsRecorder

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path, nargs="?", default=Path("data/record_digits"))
parser.add_argument("--seeds", type=int, default=8)
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--every", type=int, default=5)
args = parser.parse_args()

digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16
y = torch.tensor(digits.target)
split = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, test = split[500:], split[:500]
steps_per_epoch = len(train) / 32

for seed in range(args.seeds):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = MetricsRecorder(
        model, seed, args.folder, example_losses=(x[test[:64]], y[test[:64]])
    )
    for step in range(args.steps + 1):
        if step % args.every == 0:
            with torch.no_grad():
                fit, held = model(x[train]), model(x[test])
            recorder.record(
                step,
                epoch=step / steps_per_epoch,
                eval_acc=(held.argmax(1) == y[test]).float().mean(),
                eval_loss=nn.functional.cross_entropy(held, y[test]),
                train_loss=nn.functional.cross_entropy(fit, y[train]),
                train_acc=(fit.argmax(1) == y[train]).float().mean(),
            )
        batch = train[torch.randint(len(train), (32,))]
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    recorder.close()
print(f"{args.seeds} runs recorded in {args.folder}")
