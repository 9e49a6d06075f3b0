"""The statistics behind the reports, from statsmodels (no hand-written formulas).

- Holdout lift: the difference of two independent proportions (mailed minus held out)
  with Newcombe's hybrid score interval (`confint_proportions_2indep`, method
  "newcomb"), which stays honest for small groups and rates near 0, and the score test
  (`test_proportions_2indep`) for its p-value. "Significant" means the 95% interval
  excludes 0.
- Holdout revenue per contact: the difference of two means (mailed minus held out) with
  Welch's unequal-variance t interval and test (statsmodels' `CompareMeans`,
  `usevar="unequal"`). Only each group's size, sum and sum of squares are kept (the
  aggregates, never one row per contact), and Welch needs only each group's size, mean
  and variance: each group is given to statsmodels as two weighted points, mean ± its
  standard deviation with half the group's size each, which have exactly that size,
  mean and variance, so statsmodels' figures are those of the per-contact data.
- A/B variants: the chi-square test of equal proportions across all variants
  (`proportions_chisquare`).
"""

import math
import warnings
from dataclasses import dataclass
from types import ModuleType

ALPHA = 0.05


@dataclass(frozen=True)
class Lift:
    """Mailed vs held-out conversion rate: the difference, its 95% interval and p-value."""

    mailed_rate: float
    holdout_rate: float
    difference: float
    low: float
    high: float
    p_value: float
    relative: float | None

    @property
    def is_significant(self) -> bool:
        return self.low > 0 or self.high < 0


def conversion_lift(
    *, mailed_converted: int, mailed: int, holdout_converted: int, holdout: int
) -> Lift | None:
    """The lift of the mailed group's conversion rate over the holdout's; None if a group is
    empty."""
    if mailed <= 0 or holdout <= 0:
        return None
    if not (0 <= mailed_converted <= mailed and 0 <= holdout_converted <= holdout):
        return None  # counts from a partial period can disagree; no test on them
    with warnings.catch_warnings():
        # Zero rates make statsmodels' unused ratio/odds figures divide by zero.
        warnings.simplefilter("ignore", RuntimeWarning)
        return _lift(mailed_converted, mailed, holdout_converted, holdout)


def _proportion() -> ModuleType:
    """statsmodels, loaded on first use: with scipy.stats it costs about a second at start-up,
    which every web and worker process would pay for pages that never show a report."""
    from statsmodels.stats import proportion

    return proportion


def _lift(mailed_converted: int, mailed: int, holdout_converted: int, holdout: int) -> Lift:
    mailed_rate, holdout_rate = mailed_converted / mailed, holdout_converted / holdout
    low, high = _proportion().confint_proportions_2indep(
        mailed_converted,
        mailed,
        holdout_converted,
        holdout,
        method="newcomb",
        compare="diff",
        alpha=ALPHA,
    )
    result = _proportion().test_proportions_2indep(
        mailed_converted, mailed, holdout_converted, holdout, method="score", compare="diff"
    )
    p_value = float(result.pvalue)
    if not all(math.isfinite(value) for value in (low, high)):
        return None
    return Lift(
        mailed_rate=mailed_rate,
        holdout_rate=holdout_rate,
        difference=mailed_rate - holdout_rate,
        low=float(low),
        high=float(high),
        p_value=1.0 if math.isnan(p_value) else p_value,
        relative=(mailed_rate - holdout_rate) / holdout_rate if holdout_rate else None,
    )


@dataclass(frozen=True)
class RevenueLift:
    """Mailed vs held-out revenue per contact: the difference, its 95% interval, p-value."""

    mailed_mean: float
    holdout_mean: float
    difference: float
    low: float
    high: float
    p_value: float

    @property
    def is_significant(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Sample:
    """A group's per-contact values, summarised: size, sum and sum of squares."""

    size: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.size

    @property
    def spread(self) -> float:
        """The population standard deviation (rounding can make the variance a hair < 0)."""
        return math.sqrt(max(self.squares / self.size - self.mean**2, 0.0))


def revenue_lift(mailed: Sample, holdout: Sample) -> RevenueLift | None:
    """Welch's interval for mailed minus held-out mean; None when it cannot be computed
    (a group under two contacts, or no spread in either group)."""
    if mailed.size < 2 or holdout.size < 2:
        return None
    if mailed.spread == 0 and holdout.spread == 0:
        return None
    from statsmodels.stats.weightstats import CompareMeans

    compare = CompareMeans(_described(mailed), _described(holdout))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = compare.tconfint_diff(alpha=ALPHA, usevar="unequal")
        _, p_value, _ = compare.ttest_ind(usevar="unequal")
    if not all(math.isfinite(value) for value in (low, high)):
        return None
    return RevenueLift(
        mailed_mean=mailed.mean,
        holdout_mean=holdout.mean,
        difference=mailed.mean - holdout.mean,
        low=float(low),
        high=float(high),
        p_value=float(p_value) if math.isfinite(p_value) else 1.0,
    )


def _described(sample: Sample):
    """Two weighted points with the sample's size, mean and variance (see the module doc)."""
    import numpy
    from statsmodels.stats.weightstats import DescrStatsW

    mean, spread = sample.mean, sample.spread
    half = sample.size / 2
    return DescrStatsW(numpy.array([mean - spread, mean + spread]), weights=[half, half])


def variants_p_value(successes: list[int], trials: list[int]) -> float | None:
    """p-value of "all variants have the same rate"; None when it cannot be tested yet."""
    pairs = [(s, n) for s, n in zip(successes, trials, strict=True) if n > 0]
    if len(pairs) < 2 or sum(s for s, _ in pairs) == 0 or any(s > n for s, n in pairs):
        return None
    if all(s == n for s, n in pairs):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, p_value, _ = _proportion().proportions_chisquare(
            [s for s, _ in pairs], [n for _, n in pairs]
        )
    return float(p_value) if math.isfinite(p_value) else None
