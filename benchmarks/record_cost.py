"""Cost of one ``MetricsRecorder.record`` call against one training step of the same model.

Builds the workflow's CIFAR ResNet18 (``trainmap.training.resnet.ResNet``, 11.2 M
parameters, 21 matrices), measures in one process the median time of one SGD
step (forward, backward, update) on a batch of ``--batch`` 32×32 images, and of
one ``record`` call (the 14 metrics of the current weights; optionally with the
losses of ``--examples`` fixed examples), and prints the ratio: how many
training steps one recorded checkpoint costs.

    OMP_NUM_THREADS=1 python benchmarks/record_cost.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from trainmap.jobs import limit_threads
from trainmap.record import MetricsRecorder
from trainmap.training.resnet import ResNet


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    limit_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = ResNet(3, 100).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(100, (args.batch,), device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    step_s = median_seconds(train_step, args.repeats)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        examples = (x[: args.examples], y[: args.examples])
        cases = {"metrics": None, f"+ {args.examples} example losses": examples}
        for run, (label, losses) in enumerate(cases.items()):
            recorder = MetricsRecorder(model, run, folder, example_losses=losses)
            steps = iter(range(10**9))

            def record(recorder: MetricsRecorder = recorder, steps=steps) -> None:
                recorder.record(next(steps))
                sync()

            seconds = median_seconds(record, args.repeats)
            recorder.close()
            rows.append((label, seconds))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ResNet18 (CIFAR, 100 classes): {n_params / 1e6:.1f} M parameters, device "
          f"{args.device}, {args.threads} thread(s), median of {args.repeats}")  # fmt: skip
    print(f"| what | seconds | ratio to one training step (batch {args.batch}) |")
    print("| --- | --- | --- |")
    print(f"| training step | {step_s:.3f} | 1 |")
    for label, seconds in rows:
        print(f"| record: {label} | {seconds:.3f} | {seconds / step_s:.2f} |")


if __name__ == "__main__":
    main()
