"""Record the 14 metrics while training, as a user's own training script would.

Trains ``--seeds`` seeds of a small MLP on scikit-learn's digits with a plain
PyTorch loop; one :class:`trainmap.record.MetricsRecorder` per seed measures the
weights every ``--every`` steps, with the train and evaluation losses and
accuracies and the per-example losses of 64 fixed test digits, into
``<folder>/<seed>/``. No checkpoint is saved. Then analyse the folder with
``config/examples/record_digits.yaml`` (README, "Record while you train")::

    .venv/bin/python config/examples/record_digits.py data/record_digits

``--predict-after N``: the seeds after the first N are recorded with a convergence
predictor fitted on those N finished runs (README, "Tell a slow run early"); their
rows carry the predicted convergence epoch and its interval.
"""

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from trainmap.record import MetricsRecorder
from trainmap.tables import METRICS, read_recorded

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path, nargs="?", default=Path("data/record_digits"))
parser.add_argument("--seeds", type=int, default=8)
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--every", type=int, default=5)
parser.add_argument("--predict-after", type=int, default=0, metavar="N")
args = parser.parse_args()


def fitted_predictor(folder: Path, runs: int):
    """A predictor fitted on the first ``runs`` recorded runs (3 states, threshold 0.9)."""
    from trainmap.analysis.hmm import FitOptions
    from trainmap.analysis.predict import ConvergencePredictor
    from trainmap.analysis.regression import convergence_times

    table = read_recorded(folder)
    table = table[table["run"].astype(int) < runs]
    metrics = [m for m in METRICS if m in table and table[m].std() > 0]
    options = FitOptions(restarts=2, covariance_type="diag")
    return ConvergencePredictor(3, metrics, 0.9, options).fit(table, convergence_times(table, 0.9))


digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16
y = torch.tensor(digits.target)
split = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, test = split[500:], split[:500]
steps_per_epoch = len(train) / 32

predictor = None
for seed in range(args.seeds):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if seed == args.predict_after > 0:
        predictor = fitted_predictor(args.folder, seed)
    recorder = MetricsRecorder(
        model,
        seed,
        args.folder,
        example_losses=(x[test[:64]], y[test[:64]]),
        predictor=predictor,
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
        if recorder.prediction and step % 100 == 0:
            low, high = (
                recorder.prediction["predicted_convergence_low"],
                recorder.prediction["predicted_convergence_high"],
            )
            print(f"seed {seed} step {step}: converges at epoch {low:.2f}–{high:.2f}")
    recorder.close()
print(f"{args.seeds} runs recorded in {args.folder}")
