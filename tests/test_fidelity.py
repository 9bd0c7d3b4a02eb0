"""The fidelity report on hand-made results tables whose ✓/✗ outcomes are known."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainmap.errors import TrainmapError
from trainmap.fidelity import (
    FAILS,
    HOLDS,
    NOT_JUDGED,
    Context,
    evaluate,
    judge,
    load_claims,
    markdown,
    table_hashes,
)
from trainmap.tables import write_table

CLAIMS = Path(__file__).parents[1] / "config" / "claims.yaml"
METRICS = ["l1", "l2"]


def _write(root: Path, relative: str, table: pd.DataFrame) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)


def _table1_row(name, r2, p, dissimilarity, forking, states, detours=""):
    return {
        "name": name,
        "R2": r2,
        "p-value": p,
        "Dissimilarity": dissimilarity,
        "Forking": forking,
        "states": states,
        "Detour states": detours,
    }


def _model(root: Path, setting: str, l2_means: list[float]) -> None:
    k = len(l2_means)
    path = root / "hmm" / setting / "model.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    means = np.column_stack([np.zeros(k), l2_means])
    np.savez(
        path,
        startprob=np.full(k, 1 / k),
        transmat=np.eye(k),
        means=means,
        covars=np.stack([np.eye(2)] * k),
        metrics=np.array(METRICS),
    )


def _edges(rows):
    """Edges (source, target, runs, mean, sem); the start state is 0."""
    return pd.DataFrame(
        [
            {
                "source": s,
                "target": t,
                "runs": r,
                "runs_total": 10,
                "from_start": s == 0,
                "mean_convergence": m,
                "sem_convergence": e,
            }
            for s, t, r, m, e in rows
        ]
    )


def _metrics(runs: dict[int, tuple[int, int]], epochs: int = 100) -> pd.DataFrame:
    """Per run (memorised epoch, generalised epoch) -> a metrics table with accuracies."""
    frames = []
    for run, (memorised, generalised) in runs.items():
        e = np.arange(0, epochs + 1, 5)
        frames.append(
            pd.DataFrame(
                {
                    "run": run,
                    "step": e,
                    "epoch": e.astype(float),
                    "train_acc": np.where(e >= memorised, 1.0, 0.5),
                    "eval_acc": np.where(e >= generalised, 0.95, 0.1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small run where each checked claim has a known outcome (see the test)."""
    _write(
        tmp_path,
        "hu2023/table1.csv",
        pd.DataFrame(
            [
                _table1_row("modular", 0.8, 1e-4, 0.40, "yes", 6, "2, 3"),
                _table1_row("modular_stabilized", 0.3, 0.2, 0.05, "no", 3),
                _table1_row("cifar100", 0.1, 0.5, 0.03, "no", 5),
                _table1_row("cifar100_destabilized", 0.2, 0.3, 0.02, "no", 2),  # no destabilisation
                _table1_row("parities", 0.9, 1e-3, 0.2, "yes", 8, "1"),
                _table1_row("mnist", 0.7, 0.01, 0.06, "no", 6),  # R² too high, p too low
            ]
        ),
    )
    # Modular: three exits, the fastest (0 -> 2) with the middle L2 drop.
    _write(
        tmp_path,
        "maps/modular/edges.csv",
        _edges(
            [
                (0, 1, 6, 2900, 100),
                (0, 2, 2, 1800, 70),
                (0, 3, 2, 5400, 300),
                (1, 2, 6, np.nan, np.nan),
            ]
        ),
    )
    _model(tmp_path, "modular", [0.0, -0.6, -1.7, -2.1])
    # Parities: the slow exit lowers L2 and the fast one too: figure 8's claim fails.
    _write(tmp_path, "maps/parities/edges.csv", _edges([(0, 1, 9, 90, 5), (0, 2, 1, 40, np.nan)]))
    _model(tmp_path, "parities", [0.0, -0.3, -0.5])
    _write(tmp_path, "maps/modular_stabilized/edges.csv", _edges([(0, 1, 10, 30, 1)]))
    _write(
        tmp_path,
        "regression/modular/convergence.csv",
        pd.DataFrame({"time": [400.0, 600.0, 800.0]}),
    )
    _write(
        tmp_path,
        "regression/modular_stabilized/convergence.csv",
        pd.DataFrame({"time": [50.0, 50.0, 55.0]}),
    )
    # Run 0 groks (memorised 10, generalised 40), run 1 does not (10, 20).
    _write(tmp_path, "runs/modular/metrics.parquet", _metrics({0: (10, 40), 1: (10, 20)}))
    _write(
        tmp_path,
        "blog2025/pca_turn.csv",
        pd.DataFrame(
            {"event": ["sharpest PCA turn", "fastest validation-loss drop"], "epoch": [40.0, 45.0]}
        ),
    )
    _write(
        tmp_path,
        "blog2025/pca_trajectory.parquet",
        pd.DataFrame({"epoch": np.arange(0.0, 101.0, 5)}),
    )
    steps = np.arange(0, 101, 5)
    _write(
        tmp_path,
        "hmm/modular/states.parquet",
        pd.DataFrame(
            {"run": 0, "step": steps, "state": np.select([steps < 10, steps < 40], [0, 1], 2)}
        ),
    )
    return tmp_path


def _context(root: Path, scale: str = "small", **kwargs) -> Context:
    blog = {"setting": "modular", "run": 0, "coincide_tolerance": 0.05, "memorised_acc": 0.99}
    return Context(root=root, scale=scale, thresholds={"modular": 0.9}, blog=blog, **kwargs)


def test_known_outcomes_on_a_hand_made_run(results):
    table = evaluate(load_claims(CLAIMS), _context(results)).set_index("id")
    status = table["status"]
    expected = {
        "table1_r2_modular": HOLDS,
        "table1_forking_modular": HOLDS,
        "table1_forking_cifar100_destabilized": FAILS,
        "table1_r2_mnist": FAILS,
        "table1_p_mnist": FAILS,
        "table1_r2_cifar100": HOLDS,
        "table2_detours_modular": HOLDS,
        "table2_no_detours_modular_stabilized": HOLDS,
        "table2_detours_cifar100_destabilized": FAILS,
        "figure2_exits": HOLDS,
        "figure2_exit_times": HOLDS,
        "figure2_l2_drops": HOLDS,
        "figure2_just_right": HOLDS,
        "figure5_linear": HOLDS,
        "figure8_exits": HOLDS,
        "figure8_l2": FAILS,
        "stabilized_faster": HOLDS,  # 600 / 51.7 = 11.6x
        "stabilized_less_spread": HOLDS,
        "stabilized_less_dissimilar": HOLDS,
        "destabilized_more_dissimilar": FAILS,
        "modular_groks": FAILS,  # one of two runs
        "blog_turn_drop": HOLDS,  # 5 epochs apart, tolerance 5
        "blog_three_phases": HOLDS,
    }
    assert status[list(expected)].to_dict() == expected
    assert table.loc["stabilized_faster", "reproduced"] == "11.6"
    assert table.loc["modular_groks", "reproduced"] == "0.5"
    # At small scale a claim with only a paper tolerance is shown, not judged.
    assert status["states_modular"] == NOT_JUDGED
    assert table.loc["states_modular", "reproduced"] == "6"
    assert "needs paper scale" in table.loc["states_modular", "reason"]
    # Not built in this run (no multiberts row, no sandbox section): not judged, said why.
    assert status["states_multiberts"] == NOT_JUDGED
    assert "not in this run" in table.loc["sandbox_transfer_mean", "reason"]
    text = markdown(table.reset_index(), "Papers against this run")
    assert text.count("| ✓ |") == (status == HOLDS).sum()
    assert "## hu2023" in text and "## blog2025" in text


def test_an_underpowered_regression_is_not_judged(results):
    """Too few runs per state: R², p-value and detours are not judged; the map still is."""
    table1 = pd.read_csv(results / "hu2023" / "table1.csv")
    table1["Regression"] = "ok"
    modular = table1["name"] == "modular"
    table1.loc[modular, ["R2", "p-value"]] = np.nan
    table1.loc[modular, "Regression"] = "underpowered: 10 runs for 6 states"
    table1.to_csv(results / "hu2023" / "table1.csv", index=False)
    table = evaluate(load_claims(CLAIMS), _context(results)).set_index("id")
    for claim in ("table1_r2_modular", "table1_p_modular", "table2_detours_modular"):
        assert table.loc[claim, "status"] == NOT_JUDGED
        assert "underpowered: 10 runs for 6 states" in table.loc[claim, "reason"]
    assert table.loc["table1_forking_modular", "status"] == HOLDS
    assert table.loc["table1_r2_parities", "status"] == HOLDS


def test_paper_scale_compares_numbers_within_tolerances(results):
    table = evaluate(load_claims(CLAIMS), _context(results, scale="paper")).set_index("id")
    status = table["status"]
    assert status["states_modular"] == HOLDS  # 6 against 6 ± 1
    assert status["states_parities"] == FAILS  # 8 against 6 ± 1
    assert status["states_cifar100_destabilized"] == FAILS  # 2 against 5 ± 1
    assert status["table1_r2_modular"] == FAILS  # 0.8 against 0.977 ± 0.1
    assert status["table1_r2_parities"] == HOLDS  # 0.9 against 0.961 ± 0.1
    assert status["table1_p_modular"] == HOLDS  # no tolerance: its predicate p < 0.05
    assert "off the paper by" in table.loc["table1_r2_modular", "reason"]


@pytest.mark.parametrize(
    ("claim", "value", "scale", "status"),
    [
        ({"paper_value": 6, "tolerance": 1}, 7, "paper", HOLDS),
        ({"paper_value": 6, "tolerance": 1}, 8, "paper", FAILS),
        ({"paper_value": 0.977, "tolerance": 0.1}, float("nan"), "paper", FAILS),
        ({"paper_value": 6, "tolerance": 1}, 6, "small", NOT_JUDGED),
        ({"paper_value": "yes", "expect": {"op": "==", "value": "yes"}}, "no", "small", FAILS),
        ({"paper_value": 0.5, "expect": {"op": ">=", "value": 0.5}}, float("nan"), "small", FAILS),
    ],
)
def test_judge(claim, value, scale, status):
    assert judge(claim, value, scale)[0] == status


# A share of runs (or spikes) is judged only when its 95% interval lies on one side of the
# claim's threshold: 8 of 8 successful runs are evidence, 1 of 1 is not.
@pytest.mark.parametrize(("successful", "share_status"), [(8, HOLDS), (1, NOT_JUDGED)])
def test_sandbox_claims(tmp_path, successful, share_status):
    def log(job, member, loss, test_acc, grad=None):
        n = len(loss)
        return pd.DataFrame(
            {
                "member": member,
                "seed": member,
                "epoch": np.arange(n),
                "train_loss": loss,
                "test_acc": test_acc,
                "grad_mlp": np.ones(n) if grad is None else grad,
            }
        )

    two_drops = np.concatenate([np.full(20, 1.0), np.full(20, 0.3), np.full(20, 0.01)])
    spiky = two_drops.copy()
    spiky[50] = 0.5  # a loss spike at epoch 50 ...
    grad = np.ones(60)
    grad[50] = 10.0  # ... with a gradient-norm spike
    runs = [log("base", m, spiky, 1.0, grad) for m in range(successful)]
    base = pd.concat([*runs, log("base", successful, np.full(60, 1.0), 0.5)])
    _write(tmp_path, "sandbox2025/runs/base/log.parquet", base)
    _write(tmp_path, "sandbox2025/runs/transfer/log.parquet", log("transfer", 0, np.ones(5), 0.9))
    _write(
        tmp_path, "sandbox2025/runs/scratch_p3/log.parquet", log("scratch_p3", 0, np.ones(5), 0.6)
    )
    _write(
        tmp_path,
        "sandbox2025/figure17_sparsity.csv",
        pd.DataFrame(
            {"success": [True, False], "mean_sparsity": [0.7, 0.5]}  # successful: sparser (fails)
        ),
    )
    # Six seeds, each run at three learning rates. Accuracy rises with the learning rate
    # within every seed, though seeds differ more than the rates do (an unpaired test
    # misses it); every batch size ends at chance.
    by_lr = [log("ablation_lr", m, np.ones(5), 0.1 * (m % 6) + 0.01 * (m // 6)) for m in range(18)]
    by_lr = pd.concat(by_lr).assign(
        seed=lambda t: t["member"] % 6, lr=lambda t: 10.0 ** -(3 - t["member"] // 6)
    )
    _write(tmp_path, "sandbox2025/runs/ablation_lr/log.parquet", by_lr)
    flat = pd.concat([log("ablation_batch_size", m, np.ones(5), 0.5) for m in range(8)])
    flat = flat.assign(
        seed=lambda t: t["member"] // 2, batch_size=lambda t: 32 * 4 ** (t["member"] % 2)
    )
    for size, runs in flat.groupby("batch_size"):
        _write(
            tmp_path, f"sandbox2025/runs/ablation_batch_size.batch_size-{size}/log.parquet", runs
        )
    sandbox = {
        "success_threshold": 0.98,
        "drops": {"window": 5, "min_rate": 0.01, "min_depth": 0.2},
        "spikes": {"window": 10, "ratio": 1.25, "min_jump": 0.02},
    }
    claims = [c for c in load_claims(CLAIMS) if c["paper"] == "sandbox2025"]
    table = evaluate(claims, Context(root=tmp_path, sandbox=sandbox)).set_index("id")
    assert table["status"].to_dict() == {
        "sandbox_two_phase": share_status,
        "sandbox_transfer_mean": HOLDS,
        "sandbox_transfer_max": HOLDS,
        "sandbox_spikes_gradnorms": share_status,
        "sandbox_sparsity": FAILS,
        "sandbox_ablation_batch_size": FAILS,
        "sandbox_ablation_lr": HOLDS,
        "sandbox_ablation_mlp_discount": NOT_JUDGED,
        "sandbox_ablation_hidden": NOT_JUDGED,
    }


# Two values make the paired test a Wilcoxon signed-rank test: 8 seeds, each better at
# the larger batch by a different margin (exact p = 2 / 2^8), hold; the same accuracies
# with the seeds shuffled at one value no longer pair up, and fail.
@pytest.mark.parametrize(("paired", "status"), [(True, HOLDS), (False, FAILS)])
def test_two_value_ablation_is_a_signed_rank_test(tmp_path, paired, status):
    seeds = np.arange(8)
    small = 0.5 + 0.05 * seeds
    large = small + 0.01 * (1 + seeds)
    if not paired:
        large = large[::-1]
    runs = pd.DataFrame(
        {
            "member": np.arange(16),
            "seed": np.concatenate([seeds, seeds]),
            "batch_size": np.repeat([32, 128], 8),
            "test_acc": np.concatenate([small, large]),
            "epoch": 10,
        }
    )
    for size, job in runs.groupby("batch_size"):
        _write(tmp_path, f"sandbox2025/runs/ablation_batch_size.batch_size-{size}/log.parquet", job)
    claims = [c for c in load_claims(CLAIMS) if c["id"] == "sandbox_ablation_batch_size"]
    row = evaluate(claims, Context(root=tmp_path, sandbox={"success_threshold": 0.98})).iloc[0]
    assert row["status"] == status
    assert "Wilcoxon" in row.iloc[-1]


def test_bad_claims_file_names_the_problem(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text(
        "claims:\n  - {id: x, paper: hu2023, source: s, claim: c, check: nope, paper_value: 1}\n"
    )
    with pytest.raises(TrainmapError, match="unknown check 'nope'"):
        load_claims(bad)
    bad.write_text(
        "claims:\n  - {id: x, paper: hu2024, source: s, claim: c, check: table1, paper_value: 1}\n"
    )
    with pytest.raises(TrainmapError, match="claims/0/paper"):
        load_claims(bad)


def test_table_hashes_are_sha256_of_the_file_bytes_and_tables_are_written_alike(tmp_path):
    (tmp_path / "abc.csv").write_bytes(b"abc")
    table = pd.DataFrame({"run": [0, 1], "loss": [0.5, 0.25]})
    for name in ("a", "b"):
        write_table(table, tmp_path / f"{name}.parquet")
    files = [tmp_path / n for n in ("b.parquet", "abc.csv", "a.parquet", "abc.csv")]
    rows = [line for line in table_hashes(files).splitlines() if str(tmp_path) in line]
    # sha256("abc"), the FIPS 180-2 test vector; each file once, in path order.
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert rows[1] == f"| {tmp_path / 'abc.csv'} | `{abc}` |"
    assert [r.split(" | ")[0] for r in rows] == [
        f"| {tmp_path / n}" for n in ("a.parquet", "abc.csv", "b.parquet")
    ]
    # The same table written twice (no timestamp in the file) has one hash.
    assert rows[0].split(" | ")[1] == rows[2].split(" | ")[1]
