"""Fit the purchase models and store what they predict: predictions_refit, calibration_run.

Both read the order history with one GROUP BY (selectors.order_summary), fit in numpy
(btyd.py) and write in bulk, so a refit at 1M contacts costs one scan of the order
activities plus a few thousand-row upserts, never a query per contact.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.predictions import btyd
from crm.predictions.models import ContactPrediction, PredictionRun
from crm.predictions.selectors import OrderSummary, order_summary
from crm.services.activities import ActivityInput, activity_record_batch

logger = logging.getLogger(__name__)

MODEL = "BG/NBD + Gamma-Gamma (crm.predictions.btyd, scipy maximum likelihood)"
#: Below these, the fit is too noisy to show: contacts get a reason instead of numbers.
MIN_CUSTOMERS = 100
MIN_REPEAT_CUSTOMERS = 20
MIN_HISTORY_DAYS = 90
MIN_VALUED_CUSTOMERS = 20
HORIZON_DAYS = 90
VALUE_DAYS = 365
#: "Expected next order" further out than this is shown as not expected.
MAX_NEXT_ORDER_DAYS = 730
#: Churn risk is watched on a ladder of 5-point steps: crossing one records an activity.
CHURN_STEP_PERCENT = 5
CHURN_ACTIVITY = "churn_risk_rose"
WRITE_BATCH = 5_000
OUTPUT_FIELDS = [
    "run",
    "orders",
    "frequency",
    "recency_days",
    "tenure_days",
    "monetary_value",
    "last_order_at",
    "probability_active",
    "churn_risk",
    "expected_purchases_90d",
    "next_order_on",
    "predicted_value_12m",
    "value_percentile",
    "reason",
    "computed_at",
]


@dataclass(frozen=True)
class Fitted:
    """What a fit produced for the summary's contacts (arrays align with the summary)."""

    frequency: btyd.BgNbdParams | None
    spend: btyd.GammaGammaParams | None
    reason: str = ""
    spend_reason: str = ""
    failed: bool = False


def _not_enough(summary: OrderSummary, now: datetime.datetime) -> str:
    customers = len(summary)
    if customers < MIN_CUSTOMERS:
        return f"Only {customers} contacts have orders; predictions need {MIN_CUSTOMERS}."
    repeat = int((summary.frequency() > 0).sum())
    if repeat < MIN_REPEAT_CUSTOMERS:
        return (
            f"Only {repeat} contacts ordered more than once; predictions need "
            f"{MIN_REPEAT_CUSTOMERS} to learn how often people come back."
        )
    history = (now - min(summary.first_order_at)).days
    if history < MIN_HISTORY_DAYS:
        return f"Orders go back {history} days; predictions need {MIN_HISTORY_DAYS}."
    return ""


def _fit(summary: OrderSummary, now: datetime.datetime) -> Fitted:
    reason = _not_enough(summary, now)
    if reason:
        return Fitted(None, None, reason)
    try:
        frequency = btyd.bgnbd_fit(summary.frequency(), summary.recency(), summary.tenure(now))
    except btyd.FitError as error:
        reason = f"The purchase-frequency model did not fit: {error}"
        return Fitted(None, None, reason, failed=True)
    means = summary.mean_value()
    valued = np.isfinite(means) & (means > 0)
    if valued.sum() < MIN_VALUED_CUSTOMERS:
        return Fitted(
            frequency,
            None,
            spend_reason=(
                f"Only {int(valued.sum())} contacts' orders carry a total; value predictions "
                f"need {MIN_VALUED_CUSTOMERS}."
            ),
        )
    try:
        spend = btyd.gamma_gamma_fit(summary.valued_orders[valued], means[valued])
    except btyd.FitError as error:
        return Fitted(frequency, None, spend_reason=f"The spend model did not fit: {error}")
    return Fitted(frequency, spend)


def _run(kind: str, summary: OrderSummary, fitted: Fitted, now: datetime.datetime, **extra):
    status = PredictionRun.Status.OK
    if fitted.frequency is None:
        status = (
            PredictionRun.Status.FAILED if fitted.failed else PredictionRun.Status.NOT_ENOUGH_DATA
        )
    means = summary.mean_value()
    return PredictionRun.objects.create(
        kind=kind,
        status=status,
        reason=fitted.reason or fitted.spend_reason,
        model=MODEL,
        customers=len(summary),
        repeat_customers=int((summary.frequency() > 0).sum()),
        valued_customers=int((np.isfinite(means) & (means > 0)).sum()),
        frequency_params=fitted.frequency.as_dict() if fitted.frequency else {},
        spend_params=fitted.spend.as_dict() if fitted.spend else {},
        started_at=now,
        **extra,
    )


def _money(value: float) -> Decimal | None:
    return None if not np.isfinite(value) else Decimal(f"{value:.2f}")


def _float(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


@dataclass(frozen=True)
class RefitResult:
    run: PredictionRun
    written: int
    churn_rises: int


def predictions_refit(*, now: datetime.datetime | None = None) -> RefitResult:
    """Fit on every order up to now and store each contact's prediction (inputs included)."""
    now = now or timezone.now()
    summary = order_summary(until=now)
    fitted = _fit(summary, now)
    run = _run(PredictionRun.Kind.REFIT, summary, fitted, now, cutoff_at=now)
    rows = _predictions(summary, fitted, run, now)
    rises = 0
    for start in range(0, len(rows), WRITE_BATCH):
        rises += _write(rows[start : start + WRITE_BATCH], run)
    # Contacts whose orders are gone (erased, merged) keep no stale numbers.
    ContactPrediction.objects.exclude(run=run).delete()
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    logger.info("predictions refit %s: %s rows, %s churn rises", run.pk, len(rows), rises)
    return RefitResult(run=run, written=len(rows), churn_rises=rises)


def _predictions(
    summary: OrderSummary, fitted: Fitted, run: PredictionRun, now: datetime.datetime
) -> list[ContactPrediction]:
    n = len(summary)
    x, t_x, T = summary.frequency(), summary.recency(), summary.tenure(now)
    means = summary.mean_value()
    nothing = np.full(n, np.nan)
    p_active, expected, gap, value, percentile = nothing, nothing, nothing, nothing, nothing
    if fitted.frequency is not None:
        params = fitted.frequency
        p_active = btyd.bgnbd_probability_alive(params, x, t_x, T)
        expected = btyd.bgnbd_expected_purchases(params, HORIZON_DAYS, x, t_x, T)
        gap = btyd.bgnbd_expected_gap_days(params, x, T)
        if fitted.spend is not None:
            valued = np.isfinite(means) & (means > 0)
            order_value = np.full(n, np.nan)
            order_value[valued] = btyd.gamma_gamma_expected_value(
                fitted.spend, summary.valued_orders[valued], means[valued]
            )
            value = btyd.bgnbd_expected_purchases(params, VALUE_DAYS, x, t_x, T) * order_value
            known = np.isfinite(value)
            if known.any():
                # The share of valued customers predicted to spend less: 90 = top 10%.
                from scipy.stats import rankdata  # scipy.stats costs 0.7 s at start-up: load on use

                percentile[known] = (rankdata(value[known], method="min") - 1) / known.sum() * 100
    return [
        ContactPrediction(
            contact_id=int(summary.contact_ids[i]),
            run=run,
            orders=int(summary.order_days[i]),
            frequency=int(x[i]),
            recency_days=round(float(t_x[i]), 2),
            tenure_days=round(float(T[i]), 2),
            monetary_value=_money(means[i]),
            last_order_at=summary.last_order_at[i],
            probability_active=_float(p_active[i]),
            churn_risk=None if not np.isfinite(p_active[i]) else float(1 - p_active[i]),
            expected_purchases_90d=_float(expected[i]),
            next_order_on=(
                (now + datetime.timedelta(days=float(gap[i]))).date()
                if np.isfinite(gap[i]) and gap[i] <= MAX_NEXT_ORDER_DAYS
                else None
            ),
            predicted_value_12m=_money(value[i]),
            value_percentile=_float(percentile[i]),
            reason=_reason(fitted, means[i], gap[i]),
            computed_at=now,
        )
        for i in range(n)
    ]


def _reason(fitted: Fitted, mean: float, gap: float) -> str:
    if fitted.frequency is None:
        return fitted.reason[:300]
    if fitted.spend is None:
        return fitted.spend_reason[:300]
    if not (np.isfinite(mean) and mean > 0):
        return "No order of this contact carries a total, so no value is predicted."
    return ""


def _percent(risk: float | None) -> int | None:
    return None if risk is None else round(risk * 100)


@transaction.atomic
def _write(rows: list[ContactPrediction], run: PredictionRun) -> int:
    """Upsert one batch; record a churn_risk_rose activity where risk crossed a 5-point step."""
    previous = dict(
        ContactPrediction.objects.filter(
            contact_id__in=[row.contact_id for row in rows], churn_risk__isnull=False
        ).values_list("contact_id", "churn_risk")
    )
    ContactPrediction.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["contact"], update_fields=OUTPUT_FIELDS
    )
    rises = []
    for row in rows:
        before, after = _percent(previous.get(row.contact_id)), _percent(row.churn_risk)
        # The first prediction sets a baseline: nobody "rises" into a risk they always had.
        if before is None or after is None:
            continue
        if after // CHURN_STEP_PERCENT > before // CHURN_STEP_PERCENT:
            rises.append(
                ActivityInput(
                    kind=CHURN_ACTIVITY,
                    source="predictions",
                    contact_id=row.contact_id,
                    occurred_at=run.cutoff_at,
                    properties={"churn_risk": after, "previous": before},
                    idempotency_key=f"churn:{run.pk}:{row.contact_id}",
                )
            )
    if rises:
        activity_record_batch(items=rises)
    return len(rises)


# --- Calibration ----------------------------------------------------------------------------

FREQUENCY_GROUPS = 7  # 0, 1, …, 5 and "6+" repeat orders before the cut-off


def calibration_run(
    *, holdout_days: int = HORIZON_DAYS, now: datetime.datetime | None = None
) -> PredictionRun:
    """Fit on orders up to now - holdout_days, then compare predictions with what happened."""
    now = now or timezone.now()
    if not 7 <= holdout_days <= 365:
        raise ValidationError("The holdout period must be between 7 and 365 days.")
    cutoff = now - datetime.timedelta(days=holdout_days)
    before = order_summary(until=cutoff)
    fitted = _fit(before, cutoff)
    extra = {"cutoff_at": cutoff, "holdout_days": holdout_days}
    run = _run(PredictionRun.Kind.CALIBRATION, before, fitted, now, **extra)
    if fitted.frequency is not None:
        after = order_summary(since=cutoff, until=now)
        actual_by_contact = dict(zip(after.contact_ids.tolist(), after.order_days, strict=True))
        actual = np.array([actual_by_contact.get(pk, 0.0) for pk in before.contact_ids.tolist()])
        x = before.frequency()
        predicted = btyd.bgnbd_expected_purchases(
            fitted.frequency, holdout_days, x, before.recency(), before.tenure(cutoff)
        )
        run.results = calibration_figures(x, predicted, actual)
    run.finished_at = timezone.now()
    run.save(update_fields=["results", "finished_at"])
    return run


def calibration_figures(x: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> dict:
    """Mean predicted vs actual purchases per past-frequency group, and the error figures."""
    groups = []
    capped = np.minimum(x, FREQUENCY_GROUPS - 1)
    for frequency in range(FREQUENCY_GROUPS):
        members = capped == frequency
        if not members.any():
            continue
        label = str(frequency) if frequency < FREQUENCY_GROUPS - 1 else f"{frequency}+"
        groups.append(
            {
                "repeat_orders": label,
                "contacts": int(members.sum()),
                "predicted": round(float(predicted[members].mean()), 3),
                "actual": round(float(actual[members].mean()), 3),
            }
        )
    total_actual = float(actual.sum())
    return {
        "groups": groups,
        "contacts": len(x),
        "predicted_total": round(float(predicted.sum()), 1),
        "actual_total": round(total_actual, 1),
        "total_error_percent": (
            round((float(predicted.sum()) - total_actual) / total_actual * 100, 1)
            if total_actual
            else None
        ),
        "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 3),
    }
