"""The deliverability report: per day and sending domain, in two aggregate queries."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from sequences.models import EspEvent, OutboundMessage

Kind = EspEvent.Kind
#: Gmail/Yahoo bulk-sender rules: keep complaints below 0.1%, never reach 0.3%.
COMPLAINT_WARN = 0.001
COMPLAINT_DANGER = 0.003
EVENT_COUNTS = {
    "delivered": Count("pk", filter=Q(kind=Kind.DELIVERED)),
    "bounced": Count("pk", filter=Q(kind__in=[Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE])),
    "hard_bounced": Count("pk", filter=Q(kind=Kind.HARD_BOUNCE)),
    "complaints": Count("pk", filter=Q(kind=Kind.COMPLAINT)),
    "unsubscribes": Count("pk", filter=Q(kind=Kind.UNSUBSCRIBED)),
}


@dataclass
class DayRow:
    day: datetime.date
    domain: str
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    hard_bounced: int = 0
    complaints: int = 0
    unsubscribes: int = 0

    def _rate(self, count: int, base: int) -> float | None:
        return count / base if base else None

    @property
    def bounce_rate(self):
        return self._rate(self.bounced, self.sent)

    @property
    def complaint_rate(self):
        # Complaints per delivered email; the ledger's sends when the ESP reports no deliveries.
        return self._rate(self.complaints, self.delivered or self.sent)

    @property
    def unsubscribe_rate(self):
        return self._rate(self.unsubscribes, self.delivered or self.sent)

    @property
    def shown(self) -> dict[str, str]:
        """The rates as text for the report, e.g. "0.12%" ("–" with nothing to divide by)."""
        return {
            "bounce": percent(self.bounce_rate),
            "complaint": percent(self.complaint_rate),
            "unsubscribe": percent(self.unsubscribe_rate),
        }

    @property
    def complaint_level(self) -> str:
        rate = self.complaint_rate or 0
        if rate >= COMPLAINT_DANGER:
            return "danger"
        return "warn" if rate >= COMPLAINT_WARN else "ok"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.2%}"


def default_sending_domain() -> str:
    """The ledger sends from DEFAULT_FROM_EMAIL, so its sends count under that domain."""
    address = settings.DEFAULT_FROM_EMAIL.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[-1].lower()


def deliverability_by_day(*, days: int = 30, now=None) -> list[DayRow]:
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    default = default_sending_domain()
    rows: dict[tuple, DayRow] = {}

    def row(day, domain) -> DayRow:
        key = (day, domain or default)
        return rows.setdefault(key, DayRow(day=day, domain=key[1]))

    sent = (
        OutboundMessage.objects.filter(sent_at__gte=since)
        .annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(sent=Count("pk"))
    )
    for item in sent:
        row(item["day"], default).sent += item["sent"]
    events = (
        EspEvent.objects.filter(occurred_at__gte=since)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "sending_domain")
        .annotate(**EVENT_COUNTS)
    )
    for item in events:
        target = row(item["day"], item["sending_domain"])
        for name in EVENT_COUNTS:
            setattr(target, name, getattr(target, name) + item[name])
    return sorted(rows.values(), key=lambda r: (r.day, r.domain), reverse=True)
