"""Demo data for the revenue view: two sequences' history, one with a visible lift, one without.

    from sequences.reports.demo import demo_seed_revenue
    demo_seed_revenue(now=now, rng=random.Random(7), contacts=contacts)

It writes history the way live traffic would: enrollments through the enrollment
service, sent emails on the send ledger with their `email_sent` activities, ESP
engagement, orders, refunds and won deals as activities, so every fact and aggregate
is counted by the same code as in production. The ledger rows are written directly
(the demo simulates what an ESP accepted; nothing is sent), and every demo enrollment
has ended, so the engine never picks one up. Idempotent per sequence key: run twice, the
second run does nothing.
"""

import datetime
import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from crm.models import Activity, ConsentTopic, Contact, DealStage
from crm.services import ActivityInput, activity_record_batch, deal_create
from sequences.models import EmailTemplate, Enrollment, OutboundMessage, Sequence, SequenceVersion
from sequences.reports.facts import report_counts_add_ended
from sequences.reports.holdout import is_held_out
from sequences.services.enrollments import enrollments_bulk_save

K = Activity.Kind
STEPS = ("welcome", "reminder")


@dataclass(frozen=True)
class DemoSequence:
    key: str
    name: str
    #: Chance a mailed contact orders, and a held-out one (the lift is the gap).
    mailed_rate: float
    holdout_rate: float
    click_rate: float


DEMO_SEQUENCES = (
    # A wide gap: seed_demo's other order histories (predictions) land in both groups'
    # windows too and narrow it, and who is held out depends on the contacts' ids.
    DemoSequence("demo-cart-recovery", "Cart recovery (demo)", 0.45, 0.05, 0.35),
    DemoSequence("demo-monthly-digest", "Monthly digest (demo)", 0.10, 0.10, 0.12),
)
HOLDOUT_PERCENT = 20
DEAL_NAME_PREFIX = "Demo deal "


@transaction.atomic
def demo_seed_revenue(
    *, now: datetime.datetime, rng: random.Random, contacts: list[Contact], days: int = 45
) -> list[Sequence]:
    """Give two demo sequences `days` of history over these contacts; return the sequences."""
    seeded = []
    for spec in DEMO_SEQUENCES:
        if Sequence.objects.filter(key=spec.key).exists():
            continue
        sequence = _sequence(spec)
        _history(spec, sequence, contacts, now=now, rng=rng, days=days)
        seeded.append(sequence)
    return seeded


def _sequence(spec: DemoSequence) -> Sequence:
    topic = ConsentTopic.objects.filter(is_active=True).order_by("pk").first()
    sequence = Sequence.objects.create(
        key=spec.key,
        name=spec.name,
        topic=topic,
        is_transactional=topic is None,
        status=Sequence.Status.ACTIVE,
        holdout_percent=HOLDOUT_PERCENT,
        description="Demo history for the revenue reports (docs/reporting.md).",
    )
    steps = []
    for key in STEPS:
        template, _ = EmailTemplate.objects.get_or_create(
            key=f"{spec.key}-{key}",
            defaults={
                "name": f"{spec.name}: {key}",
                "subject": f"{spec.name}: {key}",
                "html": "<p>{{ cta_label }}: {{ cta_url }}</p><p>{{ postal_address }} "
                '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
                "cta_label": "Take the next step",
                "cta_url": "https://www.example.com/next",
            },
        )
        steps.append(
            {
                "key": key,
                "type": "send_email",
                "config": {},
                "template_id": template.pk,
                "template_key": template.key,
            }
        )
    version = SequenceVersion.objects.create(sequence=sequence, number=1, steps=steps)
    Sequence.objects.filter(pk=sequence.pk).update(current_version=version)
    sequence.current_version = version
    return sequence


def _history(spec, sequence, contacts, *, now, rng, days) -> None:
    enrolled_at = {c.pk: now - datetime.timedelta(days=rng.uniform(6, days)) for c in contacts}
    built = []
    for contact in contacts:
        at = enrolled_at[contact.pk]
        built.append(
            Enrollment(
                contact=contact,
                sequence=sequence,
                version=sequence.current_version,
                state=Enrollment.State.ACTIVE,
                current_step=STEPS[0],
                enrolled_at=at,
                due_at=None,
            )
        )
    enrollments = enrollments_bulk_save(built, now)
    ledger, activities, ended = [], [], []
    won_stage = DealStage.objects.filter(outcome=DealStage.Outcome.WON).first()
    # Conversions are spread evenly in each group (every n-th contact, not a coin flip), so
    # the demo's lift, or its absence, shows whichever contacts the hash holds out.
    seen = {True: 0, False: 0}
    for enrollment in enrollments:
        contact_id = enrollment.contact_id
        at = enrollment.enrolled_at
        held = is_held_out(sequence_key=spec.key, contact_id=contact_id, percent=HOLDOUT_PERCENT)
        clicked_at = None
        for number, step in enumerate(STEPS):
            sent_at = at + datetime.timedelta(days=2 * number, minutes=5)
            row = OutboundMessage(
                enrollment=enrollment,
                step=step,
                contact_id=contact_id,
                state=OutboundMessage.State.SKIPPED if held else OutboundMessage.State.SENT,
                reason="holdout" if held else "",
                sent_at=None if held else sent_at,
                created_at=sent_at,
            )
            ledger.append(row)
            if held:
                continue
            events = _engagement(row, sent_at, rng, spec)
            activities += events
            if clicked_at is None and any(e.kind == K.EMAIL_CLICKED for e in events):
                clicked_at = sent_at + datetime.timedelta(hours=3)
        rate = spec.holdout_rate if held else spec.mailed_rate
        seen[held] += 1
        converted = int(seen[held] * rate) > int((seen[held] - 1) * rate)
        if converted:
            base = clicked_at or at + datetime.timedelta(days=rng.uniform(0.5, 4))
            order_at = base + datetime.timedelta(hours=rng.uniform(1, 30))
            activities += _orders(contact_id, order_at, rng, spec.key)
        ended.append(
            (
                enrollment,
                Enrollment.State.CONVERTED if converted else Enrollment.State.COMPLETED,
                "goal:order_placed" if converted else "last_step",
            )
        )
    OutboundMessage.objects.bulk_create(ledger)
    sent = {(row.enrollment_id, row.step): row for row in ledger}
    items = [_with_uuid(item, sent) for item in activities]
    activity_record_batch(items=sorted(items, key=lambda item: item.occurred_at))
    for enrollment, state, reason in ended:
        enrollment.state, enrollment.reason, enrollment.ended_at = state, reason, now
        enrollment.current_step = ""
    Enrollment.objects.bulk_update(
        [e for e, _, _ in ended], ["state", "reason", "ended_at", "current_step"]
    )
    report_counts_add_ended(rows=ended, now=now)
    if won_stage is not None:
        _deals(ended, won_stage, rng)


def _engagement(row: OutboundMessage, sent_at, rng: random.Random, spec) -> list:
    """Sent, then usually delivered, sometimes opened (some by machines), clicked."""
    key = (row.enrollment.pk, row.step)
    items = [_item(K.EMAIL_SENT, row.contact_id, sent_at, key, source="sequences")]
    if rng.random() < 0.97:
        items.append(_item(K.EMAIL_DELIVERED, row.contact_id, sent_at, key, minutes=1))
    if rng.random() < 0.15:
        items.append(_item(K.EMAIL_OPENED, row.contact_id, sent_at, key, minutes=2, machine=True))
    if rng.random() < 0.45:
        items.append(_item(K.EMAIL_OPENED, row.contact_id, sent_at, key, minutes=60))
        if rng.random() < spec.click_rate / 0.45:
            items.append(_item(K.EMAIL_CLICKED, row.contact_id, sent_at, key, minutes=180))
    return items


def _item(kind, contact_id, sent_at, key, *, minutes=0, machine=False, source="esp:demo"):
    properties = {"demo_message": list(key)}
    if kind == K.EMAIL_OPENED:
        properties["is_machine_open"] = machine
    return ActivityInput(
        kind=kind,
        source=source,
        contact_id=contact_id,
        occurred_at=sent_at + datetime.timedelta(minutes=minutes),
        properties=properties,
        idempotency_key=f"demo:{kind}:{key[0]}:{key[1]}:{int(machine)}",
    )


def _with_uuid(item: ActivityInput, sent: dict) -> ActivityInput:
    """Swap the (enrollment, step) placeholder for the ledger row's uuid, as a real send has."""
    properties = dict(item.properties)
    key = properties.pop("demo_message", None)
    if key is not None:
        properties["message_uuid"] = str(sent[tuple(key)].uuid)
    return ActivityInput(
        kind=item.kind,
        source=item.source,
        contact_id=item.contact_id,
        occurred_at=item.occurred_at,
        properties=properties,
        idempotency_key=item.idempotency_key,
    )


def _orders(contact_id: int, at, rng: random.Random, prefix: str) -> list[ActivityInput]:
    """An order, sometimes a repeat order within weeks, rarely a refund of the first."""
    total = Decimal(rng.randrange(2000, 18000)) / 100
    order_id = f"{prefix}-{contact_id}"
    items = [_order(K.ORDER_PLACED, contact_id, at, order_id, total)]
    if rng.random() < 0.25:
        later = at + datetime.timedelta(days=rng.uniform(3, 20))
        items.append(_order(K.ORDER_PLACED, contact_id, later, f"{order_id}-2", total / 2))
    elif rng.random() < 0.08:
        items.append(
            _order("order_refunded", contact_id, at + datetime.timedelta(days=2), order_id, total)
        )
    return items


def _order(kind, contact_id, at, order_id, total) -> ActivityInput:
    return ActivityInput(
        kind=kind,
        source="demo",
        contact_id=contact_id,
        occurred_at=at,
        properties={"order_id": order_id, "total": f"{total:.2f}", "currency": "EUR"},
        idempotency_key=f"demo:{kind}:{order_id}",
    )


def _deals(ended, won_stage: DealStage, rng: random.Random) -> None:
    """A few converted contacts also close a deal (sales conversations after enrollment)."""
    for enrollment, state, _ in ended:
        if state == Enrollment.State.CONVERTED and rng.random() < 0.10:
            deal_create(
                name=f"{DEAL_NAME_PREFIX}{enrollment.contact_id}",
                stage=won_stage,
                contact=enrollment.contact,
                owner=_deal_owner(enrollment.contact),
                amount=Decimal(rng.randrange(100, 400)),
                currency="EUR",
            )


#: How many of the demo's consenting contacts the two demo sequences had.
DEMO_AUDIENCE = 240
DEMO_SEED = 7


def demo_revenue_history() -> str:
    """seed_demo's extension: both demo sequences over the contacts who consented."""
    from django.utils import timezone

    from crm.models import CurrentConsent

    consenting = CurrentConsent.objects.filter(is_granted=True).values("contact_id")
    contacts = list(Contact.objects.filter(pk__in=consenting).order_by("pk")[:DEMO_AUDIENCE])
    seeded = demo_seed_revenue(now=timezone.now(), rng=random.Random(DEMO_SEED), contacts=contacts)
    if not seeded:
        return "already present"
    return f"{len(seeded)} demo sequences with {len(contacts)} contacts' history"


def _deal_owner(contact: Contact):
    """The contact's owner, else the company's, else a salesperson: every deal has one."""
    from django.contrib.auth import get_user_model

    owner = contact.owner or (contact.company.owner if contact.company else None)
    sales = get_user_model().objects.filter(groups__name="Sales", is_staff=True)
    return owner or sales.order_by("pk").first()
