"""Time of one optimiser step of the engine against torch's, on the trainers' parameters.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizer_step.py

For the stacked parameters of ``--members`` seeds of a Hu setting (``--config``,
``--setting``) and of the sandbox's default run, prints the median time of one step of:

* torch's fused optimiser over the stacked parameters (what a job with one
  learning rate for all members would use without the engine);
* the engine's :class:`~trainmap.engine.MemberOptimizer` with one value for all
  members (torch's fused optimiser on the flat buffer);
* the same with a different learning rate per member (the broadcast formula);
* one torch optimiser per member (fused, on the members' slices): what per-member
  learning rates cost with stock optimisers.

All are measured in this one run, round-robin, on the same gradients.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import pandas as pd
import torch
import yaml
from torch import Tensor
from torch.func import stack_module_state

from trainmap.engine import STOCK_OPTIMIZERS, MemberOptimizer, member_values
from trainmap.jobs import limit_threads
from trainmap.sandbox.model import Sandbox, Shape
from trainmap.tables import to_markdown
from trainmap.training.tasks import get_task


def hu_parameters(config: dict, setting: str, members: int) -> list[Tensor]:
    cfg = config["settings"][setting]
    task = get_task(cfg["task"], cfg["model"], cfg["data"])
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(task.build_model())
    return list(stack_module_state(models)[0].values())


def sandbox_parameters(members: int) -> list[Tensor]:
    return [p.detach() for p in Sandbox(Shape(), list(range(members))).parameters()]


def steppers(params: list[Tensor], name: str, lr: float, decay: float) -> dict[str, Callable]:
    """One step function per way of updating ``params`` (M, ...) with gradient 1."""
    members = params[0].shape[0]
    fresh = [[p.detach().clone().requires_grad_() for p in params] for _ in range(3)]
    stock = STOCK_OPTIMIZERS[name](fresh[0], lr=lr, weight_decay=decay, fused=True)

    def engine(values: Tensor, copies: list[Tensor]) -> MemberOptimizer:
        rates = [member_values(values, p) for p in copies]
        decays = [member_values(torch.full((members,), decay), p) for p in copies]
        return MemberOptimizer(copies, rates, decays, name)

    shared = engine(torch.full((members,), lr), fresh[1])
    per_member = engine(lr * (1 + torch.arange(members) % 4), fresh[2])
    slices = [[p[m].detach().clone().requires_grad_() for p in params] for m in range(members)]
    alone = [
        STOCK_OPTIMIZERS[name](s, lr=lr * (1 + m % 4), weight_decay=decay, fused=True)
        for m, s in enumerate(slices)
    ]

    for p in [*fresh[0], *(p for s in slices for p in s)]:
        p.grad = torch.ones_like(p)
    for optimizer in (shared, per_member):
        optimizer.grad.fill_(1.0)  # the parameters' gradients are views of it
    return {
        "torch fused, stacked (one lr)": stock.step,
        "engine, one lr for all": shared.step,
        "engine, lr per member": per_member.step,
        "torch fused, one per member": lambda: [o.step() for o in alone],
    }


def median_seconds(steps: dict[str, Callable], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/paper.yaml")
    parser.add_argument("--setting", default="modular")
    parser.add_argument("--members", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--sandbox-members", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_threads(args.threads)
    config = yaml.safe_load(open(args.config))
    optimizer = config["settings"][args.setting]["optimizer"]
    cases = [
        (args.setting, m, hu_parameters(config, args.setting, m), optimizer) for m in args.members
    ]
    sandbox = {"name": "adam", "lr": 3e-3, "weight_decay": 0.0}
    cases += [("sandbox", m, sandbox_parameters(m), sandbox) for m in args.sandbox_members]
    rows = []
    for label, members, params, opt in cases:
        steps = steppers(params, opt["name"], opt["lr"], opt["weight_decay"])
        for way, seconds in median_seconds(steps, args.repeats).items():
            rows.append(
                {
                    "parameters": label,
                    "members": members,
                    "numbers": sum(p.numel() for p in params),
                    "update": way,
                    "ms per step": round(seconds * 1e3, 3),
                }
            )
        print(to_markdown(pd.DataFrame(rows[-len(steps) :])), flush=True)
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s)")
    print(to_markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
