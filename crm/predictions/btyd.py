"""BG/NBD (purchase frequency and dropout) and Gamma-Gamma (spend) on numpy and scipy.

Why our own code: `lifetimes` (the reference implementation) installs and reproduces
the published CDNOW parameters with our pins, but it has had no release since 2020,
pulls in autograd and dill, and already warns about options pandas 4 removes; `btyd`,
its fork, requires Python < 3.10; PyMC-Marketing is maintained but brings PyMC and
PyTensor (a compiler toolchain) for what is four parameters and a closed-form
likelihood. So this module implements the formulas of

- Fader, Hardie and Lee (2005), "Counting your customers the easy way: an alternative
  to the Pareto/NBD model", Marketing Science 24(2), and their note "Implementing the
  BG/NBD model for customer base analysis in Excel" (likelihood, P(alive), E[Y(t)]);
- Fader, Hardie and Lee (2005), "RFM and CLV: using iso-value curves for customer base
  analysis", JMR 42(4), and Fader and Hardie's "The Gamma-Gamma model of monetary value"
  note (likelihood, conditional expected spend),

by maximum likelihood with scipy.optimize on the log of the parameters (they must stay
positive), with every product computed as a sum of logs (gammaln, betaln, logaddexp)
so that customers with many orders do not overflow. Tests check it on data drawn from
the models' own generative processes (`bgnbd_simulate`, `gamma_gamma_simulate`).

Units: time is in days. For one customer, `x` is the number of repeat purchases (order
days after the first), `t_x` the day of the last purchase and `T` the age, both counted
from the first purchase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import betaln, expit, gammaln, hyp2f1


class FitError(Exception):
    """The optimiser did not converge, or the data cannot identify the model."""


@dataclass(frozen=True)
class BgNbdParams:
    """Purchase rate λ ~ Gamma(r, α) per day; dropout after each purchase p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGammaParams:
    """Order value ~ Gamma(p, ν) per customer, with ν ~ Gamma(q, γ) across customers."""

    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean(self) -> float:
        """Mean order value across customers, p·γ/(q-1) (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


def _arrays(*columns) -> list[np.ndarray]:
    return [np.asarray(column, dtype=float) for column in columns]


# --- BG/NBD ---------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood (Fader, Hardie and Lee 2005, equation 6)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_active = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # B(a+1, b+x-1)/B(a, b+x) = a/(b+x-1); only defined (and only present) when x > 0.
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    return common + np.logaddexp(still_active, dropped)


def bgnbd_fit(x, t_x, T, *, initial: BgNbdParams | None = None) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for these customers."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) == 0:
        raise FitError("No customers to fit.")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise FitError("Each customer needs 0 <= recency <= age and frequency >= 0.")
    # Customers with the same (x, t_x, T) add the same term: fit on the distinct rows.
    rows, weights = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    x, t_x, T = rows[:, 0], rows[:, 1], rows[:, 2]
    total = weights.sum()
    start = initial or BgNbdParams(1.0, max(float(np.mean(T)), 1.0), 1.0, 1.0)

    def negative(log_params: np.ndarray) -> float:
        params = BgNbdParams(*np.exp(log_params))
        value = -np.dot(weights, bgnbd_log_likelihood(params, x, t_x, T)) / total
        return value if np.isfinite(value) else 1e300

    result = optimize.minimize(
        negative,
        np.log([start.r, start.alpha, start.a, start.b]),
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 4,
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitError(f"BG/NBD fit failed: {result.message}")
    return BgNbdParams(*(float(value) for value in np.exp(result.x)))


def bgnbd_probability_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T): 1 for customers with no repeat purchase yet."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dropped = np.full_like(x, -np.inf)
    repeat = x > 0
    log_odds_dropped[repeat] = (
        np.log(a)
        - np.log(b + x[repeat] - 1)
        + (r + x[repeat]) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return expit(-log_odds_dropped)


def bgnbd_expected_purchases(params: BgNbdParams, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in the next t days | x, t_x, T] (Fader, Hardie and Lee 2005, eq. 10)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    big_a, big_b, big_c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_hyp = np.log(hyp2f1(big_a, big_b, big_c, z))
        # Euler's transformation when the series overflows for large x: same value.
        alternative = np.log(hyp2f1(big_c - big_a, big_c - big_b, big_c, z)) + (
            big_c - big_a - big_b
        ) * np.log1p(-z)
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, alternative)
        numerator = (
            (a + b + x - 1)
            / (a - 1)
            * (1 - np.exp(log_hyp + (r + x) * np.log((alpha + T) / (alpha + T + t))))
        )
    return numerator * bgnbd_probability_alive(params, x, t_x, T)


def bgnbd_expected_gap_days(params: BgNbdParams, x, T) -> np.ndarray:
    """1 / E[λ | x, T]: the typical days between orders for this customer while active."""
    x, T = _arrays(x, T)
    return (params.alpha + T) / (params.r + x)


def bgnbd_simulate(
    params: BgNbdParams, T, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Draw customers from the BG/NBD process observed for T days after their first order.

    Returns (x, t_x, purchase days): each list starts with day 0, the first order.
    """
    T = np.asarray(T, dtype=float)
    rates = rng.gamma(params.r, 1 / params.alpha, size=len(T))
    dropouts = rng.beta(params.a, params.b, size=len(T))
    x, t_x, days = np.zeros(len(T)), np.zeros(len(T)), []
    for index, (rate, dropout, age) in enumerate(zip(rates, dropouts, T, strict=True)):
        purchases, day = [0.0], 0.0
        while True:
            day += rng.exponential(1 / rate)
            if day > age:
                break
            purchases.append(day)
            if rng.random() < dropout:
                break
        x[index], t_x[index] = len(purchases) - 1, purchases[-1]
        days.append(purchases)
    return x, t_x, days


# --- Gamma-Gamma ----------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGammaParams, x, m) -> np.ndarray:
    """Each customer's log-likelihood of their mean order value m over x orders."""
    x, m = _arrays(x, m)
    p, q, gamma = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + gamma)
    )


def gamma_gamma_fit(x, m) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from order counts and mean order values."""
    x, m = _arrays(x, m)
    if len(x) == 0:
        raise FitError("No customers with order values to fit.")
    if np.any(x < 1) or np.any(m <= 0):
        raise FitError("Each customer needs at least one order and a positive mean value.")

    def negative(log_params: np.ndarray) -> float:
        value = -np.mean(gamma_gamma_log_likelihood(GammaGammaParams(*np.exp(log_params)), x, m))
        return value if np.isfinite(value) else 1e300

    start = np.log([1.0, 2.0, float(np.mean(m))])
    result = optimize.minimize(negative, start, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 3)
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitError(f"Gamma-Gamma fit failed: {result.message}")
    params = GammaGammaParams(*(float(value) for value in np.exp(result.x)))
    if params.q <= 1:
        raise FitError("Order values vary too wildly for a finite average (q <= 1).")
    return params


def gamma_gamma_expected_value(params: GammaGammaParams, x, m) -> np.ndarray:
    """E[order value | x orders averaging m]: a weighted mix of m and the population mean."""
    x, m = _arrays(x, m)
    p, q, gamma = params.p, params.q, params.gamma
    return p * (gamma + x * m) / (p * x + q - 1)


def gamma_gamma_simulate(
    params: GammaGammaParams, x, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw each customer's ν, then x order values; return (means, values)."""
    x = np.asarray(x, dtype=int)
    # numpy draws by shape and scale; ν and γ are rates, so their inverses are the scales.
    rates = rng.gamma(params.q, 1 / params.gamma, size=len(x))
    values = [rng.gamma(params.p, 1 / nu, size=count) for nu, count in zip(rates, x, strict=True)]
    return np.array([v.mean() for v in values]), values
