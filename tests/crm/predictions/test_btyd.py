"""The BG/NBD and Gamma-Gamma code on data drawn from the models' own processes.

Tolerances are stated per quantity. The individual BG/NBD parameters trade off
against each other (r with α, a with b), so the test bounds each one loosely and
the quantities the predictions depend on (mean purchase rate r/α, mean dropout
probability a/(a+b)) tightly. 4,000 customers is a small shop's order history.
"""

import numpy as np
import pytest

from crm.predictions import btyd

TRUE = btyd.BgNbdParams(r=0.6, alpha=30.0, a=0.9, b=3.0)
SPEND = btyd.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
CUSTOMERS = 4000


def _customers(seed: int):
    rng = np.random.default_rng(seed)
    T = rng.uniform(180, 720, size=CUSTOMERS)
    x, t_x, _days = btyd.bgnbd_simulate(TRUE, T, rng)
    return x, t_x, T


def _relative_error(found: float, true: float) -> float:
    return abs(found - true) / true


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bgnbd_recovers_known_parameters(seed):
    x, t_x, T = _customers(seed)

    found = btyd.bgnbd_fit(x, t_x, T)

    # Tight: what P(active) and expected purchases mostly depend on.
    assert _relative_error(found.r / found.alpha, TRUE.r / TRUE.alpha) < 0.10
    assert _relative_error(found.a / (found.a + found.b), TRUE.a / (TRUE.a + TRUE.b)) < 0.15
    # Loose: each parameter on its own.
    for name, value in TRUE.as_dict().items():
        assert _relative_error(found.as_dict()[name], value) < 0.40, name


def test_expected_purchases_match_what_the_process_then_does():
    rng = np.random.default_rng(7)
    T = rng.uniform(180, 720, size=CUSTOMERS)
    x, t_x, days = btyd.bgnbd_simulate(TRUE, T + 90, rng)
    # Cut each history at T: the calibration period, then 90 days of holdout.
    seen = [[d for d in history if d <= age] for history, age in zip(days, T, strict=True)]
    x_cal = np.array([len(h) - 1 for h in seen])
    t_cal = np.array([h[-1] for h in seen])
    actual = np.array([len(h) - len(s) for h, s in zip(days, seen, strict=True)])
    fitted = btyd.bgnbd_fit(x_cal, t_cal, T)

    predicted = btyd.bgnbd_expected_purchases(fitted, 90, x_cal, t_cal, T)

    # In total within 10%, and per group of past frequency within 25% where groups are big.
    assert _relative_error(predicted.sum(), actual.sum()) < 0.10
    for frequency in range(0, 4):
        group = x_cal == frequency
        if group.sum() > 200:
            assert _relative_error(predicted[group].mean(), actual[group].mean()) < 0.25


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    p_new = btyd.bgnbd_probability_alive(TRUE, [0], [0], [100])
    recent, silent = btyd.bgnbd_probability_alive(TRUE, [5, 5], [95, 20], [100, 100])

    assert p_new[0] == 1.0
    assert 0 < silent < recent < 1


def test_expected_purchases_stay_finite_for_heavy_buyers():
    value = btyd.bgnbd_expected_purchases(TRUE, 365, [400], [700], [720])

    assert np.isfinite(value[0]) and value[0] > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_gamma_gamma_recovers_known_parameters(seed):
    rng = np.random.default_rng(seed)
    orders = rng.integers(1, 12, size=CUSTOMERS)
    means, _values = btyd.gamma_gamma_simulate(SPEND, orders, rng)

    found = btyd.gamma_gamma_fit(orders, means)

    # Tight: the population mean order value p·γ/(q-1); loose: each parameter.
    assert _relative_error(found.population_mean, SPEND.population_mean) < 0.10
    for name, value in SPEND.as_dict().items():
        assert _relative_error(found.as_dict()[name], value) < 0.35, name


def test_gamma_gamma_shrinks_few_orders_towards_the_population_mean():
    one, many = btyd.gamma_gamma_expected_value(SPEND, [1, 50], [200.0, 200.0])

    assert SPEND.population_mean < one < many < 200.0


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(btyd.FitError, match="recency"):
        btyd.bgnbd_fit([1], [50], [10])
    with pytest.raises(btyd.FitError, match="positive"):
        btyd.gamma_gamma_fit([1], [0.0])
