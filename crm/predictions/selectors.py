"""Reads for predictions: the RFM summary of orders (one GROUP BY) and the latest runs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Case, Count, FloatField, Max, Min, Sum, TextField, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.db.models.lookups import Regex

from crm.models import Activity
from crm.predictions.models import ContactPrediction, PredictionRun

ORDER_KIND = Activity.Kind.ORDER_PLACED
#: A number written plainly (42, 9.5): any other text in `total` is ignored, never cast.
NUMBER_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DAY = 86_400.0


@dataclass(frozen=True)
class OrderSummary:
    """Per-contact order facts as parallel arrays (one row per contact with orders)."""

    contact_ids: np.ndarray
    order_days: np.ndarray  # distinct days with an order
    first_order_at: list[datetime.datetime]
    last_order_at: list[datetime.datetime]
    valued_orders: np.ndarray  # orders with a positive total
    total_value: np.ndarray  # their sum (0 when none)

    def __len__(self) -> int:
        return len(self.contact_ids)

    def frequency(self) -> np.ndarray:
        return self.order_days - 1

    def days_from_first(self, moments: list[datetime.datetime]) -> np.ndarray:
        return np.array(
            [(moment - first).total_seconds() / DAY for moment, first in zip(
                moments, self.first_order_at, strict=True)],
            dtype=float,
        )  # fmt: skip

    def recency(self) -> np.ndarray:
        return self.days_from_first(self.last_order_at)

    def tenure(self, now: datetime.datetime) -> np.ndarray:
        return self.days_from_first([now] * len(self))

    def mean_value(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.valued_orders > 0, self.total_value / self.valued_orders, np.nan)


def _order_total() -> Case:
    """The order's `total` (else its `value`, as cart events carry) when written as a number."""
    text = Coalesce(
        KeyTextTransform("total", "properties"),
        KeyTextTransform("value", "properties"),
        output_field=TextField(),
    )
    # Only text that is a plain number reaches the cast: PostgreSQL raises on any other.
    return Case(
        When(Regex(text, NUMBER_PATTERN), then=Cast(text, FloatField())),
        default=None,
        output_field=FloatField(),
    )


def order_summary(
    *, until: datetime.datetime, since: datetime.datetime | None = None
) -> OrderSummary:
    """Summarise every contact's orders in (since, until] with ONE GROUP BY over activities."""
    orders = Activity.objects.filter(kind=ORDER_KIND, contact__isnull=False, occurred_at__lte=until)
    if since is not None:
        orders = orders.filter(occurred_at__gt=since)
    total = _order_total()
    rows = (
        orders.order_by()
        .values("contact_id")
        .annotate(
            order_days=Count(TruncDate("occurred_at", tzinfo=datetime.UTC), distinct=True),
            first_order_at=Min("occurred_at"),
            last_order_at=Max("occurred_at"),
            valued_orders=Count(total),
            total_value=Sum(total),
        )
        .values_list(
            "contact_id",
            "order_days",
            "first_order_at",
            "last_order_at",
            "valued_orders",
            "total_value",
        )
        .order_by("contact_id")
    )
    columns = list(zip(*rows, strict=True)) or [[]] * 6
    return OrderSummary(
        contact_ids=np.array(columns[0], dtype=np.int64),
        order_days=np.array(columns[1], dtype=float),
        first_order_at=list(columns[2]),
        last_order_at=list(columns[3]),
        valued_orders=np.array(columns[4], dtype=float),
        total_value=np.array([value or 0.0 for value in columns[5]], dtype=float),
    )


def sql_plus_days(column: str) -> str:
    """SQL for the datetime column moved by N days (N, maybe negative, is the next parameter)."""
    if connection.vendor == "postgresql":
        return f"({column} + %s * INTERVAL '1 day')"
    if connection.vendor == "sqlite":
        # Django stores SQLite datetimes as UTC text: shift and compare in the same format.
        return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {column}, printf('%%+d days', %s))"
    raise NotImplementedError("Predictions support SQLite and PostgreSQL.")


def prediction_get(*, contact_id: int) -> ContactPrediction | None:
    """The contact's current prediction with its run, or None."""
    return ContactPrediction.objects.select_related("run").filter(contact_id=contact_id).first()


def prediction_run_latest(*, kind: str = PredictionRun.Kind.REFIT) -> PredictionRun | None:
    """The most recent run of this kind."""
    return PredictionRun.objects.filter(kind=kind).first()
