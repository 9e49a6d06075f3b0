"""Amounts in the report currency (REPORT_CURRENCY) at the documented fixed rates.

REPORT_CURRENCY_RATES lists "CODE=rate" pairs, 1 CODE = rate REPORT_CURRENCY, e.g.
"USD=0.92,GBP=1.17". Fixed rates keep a figure from changing after the fact; the
original amount and currency stay on each conversion, so a report can be redone at
other rates (manage.py reports_rebuild). An amount in a currency without a rate is
kept, counted as an order, and left out of revenue (shown as "no rate").
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def currency_rates() -> dict[str, Decimal]:
    """{currency: rate to the report currency}, the report currency itself at 1."""
    rates = {settings.REPORT_CURRENCY: Decimal(1)}
    for pair in str(settings.REPORT_CURRENCY_RATES or "").split(","):
        if not pair.strip():
            continue
        code, _, rate = pair.partition("=")
        try:
            value = Decimal(rate.strip())
        except InvalidOperation:
            value = Decimal(-1)
        code = code.strip().upper()
        if len(code) != 3 or not code.isalpha() or not value.is_finite() or value <= 0:
            raise ImproperlyConfigured(
                f"REPORT_CURRENCY_RATES has {pair.strip()!r}: use CODE=rate pairs such as "
                f"USD=0.92 (1 USD = 0.92 {settings.REPORT_CURRENCY})."
            )
        rates[code] = value
    return rates


def to_report_minor(amount: Decimal, currency: str) -> int | None:
    """`amount` of `currency` in report-currency cents; None when no rate is known."""
    rate = currency_rates().get((currency or settings.REPORT_CURRENCY).upper())
    if rate is None:
        return None
    return int((Decimal(amount) * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
