"""seed_demo's last three weeks of sequences, run by the real engine against a simulated ESP.

The demo's people and their behaviour are written first (crm/demo.py) and scored
(scoring/demo.py). Then the last JOURNEY_DAYS are replayed here, TICK by TICK, with the
clock set to each tick (demo_clock): the activities of the tick reach trigger matching,
goals and exits as they would have live; the engine runs what is due and hands each
email to a simulated ESP; the ESP's answers (delivered, opened, clicked, bounced,
complained, unsubscribed) come back as anymail tracking events through the same
receiver and inbox processing as a real webhook. Nothing is written by hand.
"""

import datetime
import heapq
import random
from dataclasses import dataclass, field

from anymail.signals import AnymailTrackingEvent, tracking
from django.core.mail import get_connection
from django.utils import timezone

from crm.demo import OPEN_RATES, SEED, demo_clock
from crm.models import Activity
from sequences.esp import simulated
from sequences.esp.classify import APPLE_PROXY_USER_AGENT
from sequences.esp.processing import esp_events_process
from sequences.models import OutboundMessage
from sequences.services.matching import enrollments_react
from sequences.services.running import enrollments_advance, enrollments_claim
from sequences.services.variants import variant_winners_decide

JOURNEY_DAYS = 21
TICK = datetime.timedelta(hours=12)
WORKER = "seed_demo"

#: What the simulated ESP reports, per message (shares of all messages sent).
HARD_BOUNCE = 0.02
SOFT_BOUNCE = 0.01
#: One complaint in the month (the Nth message), so the deliverability report has one.
COMPLAINT_AT = 120
UNSUBSCRIBE = 0.006
MACHINE_OPEN = 0.12  # Apple Mail Privacy Protection fetches the message at once
CLICK_AFTER_OPEN = 0.3
#: An A/B step's variants click differently, so the test has a winner to find.
VARIANT_CLICK_AFTER_OPEN = {"a": 0.08, "b": 0.7}
HUMAN_USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15"


def demo_run_journeys() -> str:
    """Replay the demo's last JOURNEY_DAYS through the sequence engine, once."""
    if OutboundMessage.objects.filter(esp_message_id__startswith=simulated.ID_PREFIX).exists():
        return "journeys already present"
    end = timezone.now()
    esp = _SimulatedEsp(random.Random(SEED))
    connection = get_connection(f"{simulated.__name__}.EmailBackend")
    # Only the written history is replayed: what the replay itself records (sends, ESP
    # events) has already reached the receivers when it was recorded.
    history = Activity.objects.filter(contact__isnull=False, pk__lte=_last_activity_pk())
    tick = end - datetime.timedelta(days=JOURNEY_DAYS)
    while tick < end:
        tick = min(tick + TICK, end)
        _tick(
            history.filter(occurred_at__gte=tick - TICK, occurred_at__lt=tick),
            tick,
            esp,
            connection,
        )
    with demo_clock(end):
        winners = variant_winners_decide()
    sent = OutboundMessage.objects.filter(state=OutboundMessage.State.SENT).count()
    return f"{sent} emails sent, {esp.reported} ESP events, {winners} A/B winner(s)"


def _last_activity_pk() -> int:
    return Activity.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _tick(history, end, esp: "_SimulatedEsp", connection) -> None:
    activities = list(history.order_by("occurred_at", "pk"))
    start = end - TICK
    with demo_clock(end):
        if activities:
            enrollments_react(activities=activities)
        due = enrollments_claim(now=end, worker=WORKER, limit=10_000)
        if due:
            enrollments_advance(pks=due, worker=WORKER, now=end, mail_connection=connection)
        esp.accept(OutboundMessage.objects.filter(sent_at__gt=start, sent_at__lte=end))
    esp.report_until(end)


@dataclass(order=True)
class _Report:
    at: datetime.datetime
    order: int
    event: AnymailTrackingEvent = field(compare=False)


class _SimulatedEsp:
    """Decides what happens to each message, then reports it when its time comes."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.pending: list[_Report] = []
        self.reported = 0
        self.accepted = 0

    def accept(self, messages) -> None:
        rows = messages.filter(state=OutboundMessage.State.SENT).select_related("contact")
        for message in rows.order_by("sent_at", "pk"):
            self.accepted += 1
            for at, event_type, extra in self._fate(message):
                self._plan(message, message.sent_at + at, event_type, **extra)

    def _fate(self, message: OutboundMessage) -> list[tuple[datetime.timedelta, str, dict]]:
        draw, minutes = self.rng.random(), self._minutes
        if draw < HARD_BOUNCE:
            return [
                (
                    minutes(1, 4),
                    "bounced",
                    {"reject_reason": "bounced", "description": "550 5.1.1 mailbox unknown"},
                )
            ]
        if draw < HARD_BOUNCE + SOFT_BOUNCE:
            return [
                (
                    minutes(1, 4),
                    "bounced",
                    {"reject_reason": "other", "description": "452 4.2.2 mailbox full"},
                )
            ]
        fate = [(minutes(0.1, 2), "delivered", {})]
        if self.rng.random() < MACHINE_OPEN:
            fate.append((minutes(1, 3), "opened", {"user_agent": APPLE_PROXY_USER_AGENT}))
        stage = message.contact.lifecycle_stage_id if message.contact else ""
        if self.rng.random() < OPEN_RATES.get(stage, 0.4):
            opened = minutes(5, 600)
            fate.append((opened, "opened", {"user_agent": HUMAN_USER_AGENT}))
            clicks = VARIANT_CLICK_AFTER_OPEN.get(message.variant, CLICK_AFTER_OPEN)
            if self.rng.random() < clicks:
                link = {
                    "click_url": "https://www.nextstep.example/guide",
                    "user_agent": HUMAN_USER_AGENT,
                }
                fate.append((opened + minutes(0.2, 3), "clicked", link))
            if self.rng.random() < UNSUBSCRIBE:
                fate.append((opened + minutes(1, 5), "unsubscribed", {}))
        if self.accepted == COMPLAINT_AT:
            fate.append((minutes(30, 900), "complained", {}))
        return fate

    def _minutes(self, low: float, high: float) -> datetime.timedelta:
        return datetime.timedelta(minutes=self.rng.uniform(low, high))

    def _plan(self, message: OutboundMessage, at, event_type: str, **extra) -> None:
        order = len(self.pending) + self.reported
        event = AnymailTrackingEvent(
            event_type=event_type,
            timestamp=at,
            event_id=f"demo-{message.uuid}-{event_type}-{order}",
            message_id=message.esp_message_id,
            recipient=message.contact.email if message.contact else "",
            metadata={"message_uuid": str(message.uuid)},
            esp_event={"simulated": True, "type": event_type},
            **extra,
        )
        heapq.heappush(self.pending, _Report(at, order, event))

    def report_until(self, end: datetime.datetime) -> None:
        """Deliver the webhooks due by `end` and process them as the inbox task would."""
        due = []
        while self.pending and self.pending[0].at <= end:
            due.append(heapq.heappop(self.pending))
        if not due:
            return
        for report in due:
            tracking.send(sender=_SimulatedEsp, event=report.event, esp_name=simulated.ESP_NAME)
        self.reported += len(due)
        with demo_clock(end):
            while esp_events_process():
                pass
