"""Loss drops, spikes and activation sparsity on curves with known answers."""

import numpy as np
import pandas as pd

from trainmap.sandbox.analysis import (
    Event,
    activation_sparsity,
    grid_summary,
    loss_drops,
    loss_spikes,
)


def two_drop_curve():
    """Plateau 0.69, drop at epochs 50-55 to 0.3, plateau, drop at 150-155 to 0.01."""
    e = np.arange(300)
    log_loss = np.log(0.69) + (np.log(0.3) - np.log(0.69)) * np.clip((e - 50) / 5, 0, 1)
    log_loss += (np.log(0.01) - np.log(0.3)) * np.clip((e - 150) / 5, 0, 1)
    return np.exp(log_loss)


def test_two_drops_found_where_they_are():
    drops = loss_drops(two_drop_curve(), window=3, min_rate=0.01, min_depth=0.2)
    assert len(drops) == 2
    (a, b), (c, d) = [(x.start, x.end) for x in drops]
    assert 46 <= a <= 51 and 54 <= b <= 58
    assert 146 <= c <= 151 and 154 <= d <= 158


def test_flat_curve_has_no_drop_and_noise_below_min_rate_is_ignored():
    rng = np.random.default_rng(0)
    flat = 0.69 * np.exp(rng.normal(0, 1e-5, 200))
    assert loss_drops(flat, window=5, min_rate=1e-3, min_depth=0.2) == []


def test_spike_detected_with_before_and_peak():
    loss = np.full(100, 0.05)
    loss[60:63] = [0.2, 0.4, 0.1]
    spikes = loss_spikes(loss, window=10, ratio=2.0, min_jump=0.05)
    assert spikes == [Event(59, 61)]
    # A smooth decrease is never a spike.
    assert loss_spikes(two_drop_curve(), window=10, ratio=2.0, min_jump=0.05) == []


def test_sparsity_counts_entries_below_eps():
    acts = np.array([[0.0, 1e-4, -1e-2], [0.5, -2.0, 10.0]])
    eps = np.array([1e-6, 1e-3, 1.0, 100.0])
    np.testing.assert_allclose(activation_sparsity(acts, eps), [1 / 6, 2 / 6, 4 / 6, 1.0])
    # Monotone in eps, from 0 to 1 over a wide enough range.
    rng = np.random.default_rng(1)
    curve = activation_sparsity(rng.normal(size=1000), np.logspace(-8, 3, 30))
    assert curve[0] < 0.01 and curve[-1] == 1.0 and np.all(np.diff(curve) >= 0)


def test_grid_summary_mean_std_and_one_seed():
    log = pd.DataFrame(
        {
            "seed": [0, 1, 0, 1, 0, 1, 0, 1],
            "lr": [0.1, 0.1, 0.01, 0.01] * 2,
            "epoch": [0, 0, 0, 0, 5, 5, 5, 5],
            "test_acc": [0.5, 0.5, 0.5, 0.5, 1.0, 0.6, 0.2, 0.4],
        }
    )
    out = grid_summary(log, "lr").set_index("lr")
    assert out.loc[0.1, "mean"] == 0.8 and out.loc[0.01, "one_seed"] == 0.2
    np.testing.assert_allclose(out.loc[0.1, "std"], np.std([1.0, 0.6], ddof=1))
    assert (out["runs"] == 2).all()
