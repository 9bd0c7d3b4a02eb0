"""Which training jobs the ``sandbox`` config section asks for (no torch: read at DAG time).

A *job* trains a set of members (runs) as one batched model. Members that differ only
in seed, learning rate, MLP learning-rate discount or weight decay share a job; a different batch
size, width ``d`` or number of hidden neurons ``h`` gets its own job. Job names:

``<experiment>``                      a plain experiment (``sandbox.experiments``)
``<experiment>.<key>-<value>``        one shape-changing grid value of an ablation
``... .s<first>-<last>``              one chunk of seeds when ``seeds_per_job`` splits them
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from trainmap.errors import TrainmapError
from trainmap.jobs import seed_chunks

#: Hyperparameters batched as members of one job; the others change shapes or steps.
MEMBER_KEYS = ("lr", "mlp_discount", "weight_decay")
SHAPE_KEYS = ("batch_size", "hidden", "d")


@dataclass(frozen=True)
class JobSpec:
    """Everything one training job needs. ``seeds``, ``lr``, ``mlp_discount`` and
    ``weight_decay`` are per member."""

    seeds: tuple[int, ...]
    lr: tuple[float, ...]
    mlp_discount: tuple[float, ...]
    weight_decay: tuple[float, ...]
    seq_len: int = 12
    k: int = 5
    p: int = 2
    vocab: int = 3
    n: int = 2048
    n_test: int = 2048
    disjoint_test: bool = False
    d: int = 2
    hidden: int = 32
    batch_size: int = 32
    epochs: int = 1000
    betas: tuple[float, float] = (0.9, 0.999)
    snapshot_every: int = 0
    init_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spec(base: dict[str, Any], seeds: list[int], grid: dict[str, list[float]]) -> JobSpec:
    """A job whose members are every (seed, lr, mlp_discount, weight_decay) of
    ``seeds`` x ``grid``."""
    values = [grid.get(key, [base[key]]) for key in MEMBER_KEYS]
    members = [(s, *point) for point in itertools.product(*values) for s in seeds]
    per_member = ("seeds", *MEMBER_KEYS)
    fixed = {
        k: v for k, v in base.items() if k in JobSpec.__dataclass_fields__ and k not in per_member
    }
    if "betas" in fixed:
        fixed["betas"] = tuple(fixed["betas"])
    columns = list(zip(*members, strict=True))
    return JobSpec(
        seeds=tuple(columns[0]),
        **{key: tuple(map(float, c)) for key, c in zip(MEMBER_KEYS, columns[1:], strict=True)},
        **fixed,
    )


def plan_jobs(sandbox: dict[str, Any]) -> dict[str, JobSpec]:
    """Every training job of the ``sandbox`` config section, by job name."""
    defaults = sandbox["defaults"]
    jobs: dict[str, JobSpec] = {}
    for name, exp in sandbox["experiments"].items():
        base = {**defaults, **{k: v for k, v in exp.items() if k not in ("seeds", "grid")}}
        if "init_from" in exp:
            if exp["init_from"] not in sandbox["experiments"]:
                raise TrainmapError(
                    f"sandbox.experiments.{name}.init_from: unknown experiment {exp['init_from']!r}"
                )
            base["init_from"] = exp["init_from"]
        n_seeds = exp.get("seeds", defaults["seeds"])
        first_seed = exp.get("first_seed", defaults.get("first_seed", 0))
        grid = exp.get("grid", {})
        unknown = set(grid) - set(MEMBER_KEYS) - set(SHAPE_KEYS)
        if unknown:
            raise TrainmapError(f"sandbox.experiments.{name}.grid: unknown keys {sorted(unknown)}")
        shape_grid = [(k, v) for k in SHAPE_KEYS if k in grid for v in grid[k]]
        variants = [(f".{k}-{v:g}", {k: v}) for k, v in shape_grid] or [("", {})]
        for suffix, change in variants:
            per_job = exp.get("seeds_per_job", defaults.get("seeds_per_job"))
            chunks = seed_chunks(n_seeds, per_job, first_seed)
            for first, last in chunks:
                tag = f".s{first}-{last}" if len(chunks) > 1 else ""
                spec = _spec({**base, **change}, list(range(first, last + 1)), grid)
                jobs[f"{name}{suffix}{tag}"] = replace(spec, extra={"experiment": name, **change})
    return jobs


def experiment_jobs(jobs: dict[str, JobSpec], experiment: str) -> list[str]:
    """Names of the jobs of one experiment."""
    return [name for name, spec in jobs.items() if spec.extra["experiment"] == experiment]
