"""Handoffs: crossing a rule, hysteresis, signals, the owner's email, sales' actions, SLAs."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Activity, Deal, LifecycleStageChange, Task
from crm.services import ActivityInput, activity_record_batch
from scoring.models import Handoff, RoundRobinPointer
from scoring.services import (
    DEMO_TASK_SOURCE,
    handoff_accept,
    handoff_claim,
    handoff_mark_contacted,
    handoff_recycle,
    handoff_reject,
    handoff_sla_check,
)
from scoring.services.handoffs import Lead, handoffs_open
from scoring.tasks import check_handoff_sla_task, notify_handoff_owner_task
from tests.factories import ContactFactory, DealFactory, HandoffFactory, UserFactory
from tests.scoring.conftest import engagement_rule, record, score_of

pytestmark = pytest.mark.django_db

PRICING = [("path", "contains", "/pricing")]
CAREERS = [("path", "contains", "/careers")]


@pytest.fixture
def scoring_rules(db):
    """Pricing +30, careers -10, blog +5: enough to walk a score up and down."""
    return {
        "pricing": engagement_rule("pricing", points=30, conditions=PRICING),
        "careers": engagement_rule("careers", points=-10, conditions=CAREERS),
        "blog": engagement_rule("blog", points=5, conditions=[("path", "contains", "/blog")]),
    }


@pytest.fixture
def owned_contact(seller):
    return ContactFactory(owner=seller)


def test_crossing_the_threshold_opens_one_handoff_and_sends_one_email(
    scoring_rules, handoff_rule, owned_contact, seller, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(owned_contact, path="/pricing", times=2)
    with django_capture_on_commit_callbacks(execute=True):
        record(owned_contact, path="/pricing")
    handoff = Handoff.objects.get()
    notify_handoff_owner_task(handoff.pk)  # a re-delivered task sends nothing

    assert (handoff.owner, handoff.status, handoff.score) == (seller, "new", 60)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [seller.email]
    assert f"/admin/scoring/handoff/{handoff.pk}/change/" in mail.outbox[0].body
    assert Handoff.objects.get().notified_at is not None


def test_the_handoff_explains_itself(scoring_rules, handoff_rule, owned_contact):
    record(owned_contact, path="/pricing", times=2)

    handoff = Handoff.objects.get()

    assert handoff.reasons[0]["label"] == "+60 Pricing (twice this week)"
    assert (handoff.engagement_score, handoff.fit_score) == (60, 0)


def test_handoff_records_handed_off_so_nurture_can_stop(scoring_rules, handoff_rule, owned_contact):
    record(owned_contact, path="/pricing", times=2)

    activity = Activity.objects.get(kind="handed_off")

    handoff = Handoff.objects.get()
    assert activity.contact == owned_contact
    assert activity.properties == {
        "handoff_id": handoff.pk,
        "rule": "mql",
        "score": 60,
        "owner_id": handoff.owner_id,
    }


def test_hovering_around_the_threshold_does_not_open_a_second_handoff(
    scoring_rules, handoff_rule, owned_contact, seller
):
    record(owned_contact, path="/pricing", times=2)  # 60: handed off
    record(owned_contact, path="/careers", times=2)  # 40
    record(owned_contact, path="/blog", times=3)  # 55: still open, nothing new
    handoff_recycle(handoff=Handoff.objects.get(), user=seller, reason="Student, no budget")
    record(owned_contact, path="/careers")  # 45: above threshold - margin
    record(owned_contact, path="/blog", times=2)  # 55: not re-armed yet

    assert Handoff.objects.count() == 1

    record(owned_contact, path="/careers", times=2)  # 35: below 50 - 10, re-armed
    record(owned_contact, path="/pricing")  # 65

    assert Handoff.objects.count() == 2
    assert Handoff.objects.filter(status="new").count() == 1


def test_a_cooldown_keeps_a_closed_lead_out_even_once_re_armed(
    scoring_rules, handoff_rule, owned_contact, seller, clock
):
    handoff_rule.cooldown_days = 14
    handoff_rule.save()
    record(owned_contact, path="/pricing", times=2)
    handoff_reject(handoff=Handoff.objects.get(), user=seller, reason="Competitor")
    record(owned_contact, path="/careers", times=3)  # 30: re-armed

    record(owned_contact, path="/pricing")  # 60, but within the cooldown
    during_cooldown = Handoff.objects.count()
    clock.advance(days=15)
    record(owned_contact, path="/blog")

    assert during_cooldown == 1
    assert Handoff.objects.count() == 2


def test_a_second_open_handoff_for_a_contact_is_refused_by_the_database(db):
    first = HandoffFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        HandoffFactory(contact=first.contact)


def test_a_required_signal_must_be_recent(scoring_rules, handoff_rule, owned_contact, clock):
    demo = engagement_rule("demo", points=0, kind="demo_requested")
    handoff_rule.signal_rules.add(demo)
    handoff_rule.signal_window_days = 7
    handoff_rule.save()
    record(owned_contact, kind="demo_requested")
    clock.advance(days=8)

    record(owned_contact, path="/pricing", times=2)  # 60, but the demo request is too old
    without_signal = Handoff.objects.count()
    record(owned_contact, kind="demo_requested")

    assert without_signal == 0
    handoff = Handoff.objects.get()
    assert handoff.reasons[0] == {
        "type": "signal",
        "label": "Demo (1× in the last 7 days)",
        "at": clock.now.isoformat(),
    }


def test_a_capped_signal_still_counts_as_a_signal(
    scoring_rules, handoff_rule, owned_contact, clock
):
    comparison = engagement_rule(
        "comparison",
        points=10,
        kind="content_downloaded",
        cap_points=10,
        cap_period_days=30,
    )
    handoff_rule.signal_rules.add(comparison)
    handoff_rule.signal_window_days = 3
    handoff_rule.save()
    record(owned_contact, kind="content_downloaded")
    clock.advance(days=10)

    record(owned_contact, kind="content_downloaded")  # capped at 0 points, but a signal
    record(owned_contact, path="/pricing", times=2)

    assert Handoff.objects.count() == 1


def test_handoff_moves_the_lifecycle_stage_forward_only(scoring_rules, handoff_rule, seller):
    handoff_rule.lifecycle_stage_id = "engaged_lead"
    handoff_rule.save()
    lead = ContactFactory(owner=seller, lifecycle_stage_id="new_lead")
    customer = ContactFactory(owner=seller, lifecycle_stage_id="active_customer")

    record(lead, path="/pricing", times=2)
    record(customer, path="/pricing", times=2)

    lead.refresh_from_db()
    customer.refresh_from_db()
    assert (lead.lifecycle_stage_id, customer.lifecycle_stage_id) == (
        "engaged_lead",
        "active_customer",
    )
    assert LifecycleStageChange.objects.get(contact=lead).source == "handoff rule mql"
    assert Handoff.objects.count() == 2


# --- What sales does -------------------------------------------------------------------------


def test_recycle_and_reject_require_a_reason(seller):
    handoff = HandoffFactory()

    for close in (handoff_recycle, handoff_reject):
        with pytest.raises(ValidationError) as refused:
            close(handoff=handoff, user=seller, reason="  ")
        assert "Say why" in str(refused.value)

    assert Handoff.objects.get().status == "new"


def test_recycle_sends_the_lead_back_to_nurture_with_the_reason(seller):
    handoff = HandoffFactory(contact__lifecycle_stage_id="opportunity")

    handoff_recycle(handoff=handoff, user=seller, reason="Not before Q3")

    handoff.refresh_from_db()
    handoff.contact.refresh_from_db()
    assert (handoff.status, handoff.close_reason, handoff.closed_by) == (
        "recycled",
        "Not before Q3",
        seller,
    )
    assert handoff.contact.lifecycle_stage_id == "engaged_lead"
    change = LifecycleStageChange.objects.get(contact=handoff.contact)
    assert change.reason == "Recycled to nurture: Not before Q3"


@pytest.mark.parametrize("action", ["accept", "recycle"])
def test_a_customers_expansion_lead_keeps_the_customer_stage(seller, action):
    handoff = HandoffFactory(owner=seller, contact__lifecycle_stage_id="active_customer")

    if action == "accept":
        handoff_accept(handoff=handoff, user=seller)
    else:
        handoff_recycle(handoff=handoff, user=seller, reason="Renewal talk in May")

    handoff.contact.refresh_from_db()
    assert handoff.contact.lifecycle_stage_id == "active_customer"
    assert not LifecycleStageChange.objects.filter(contact=handoff.contact).exists()


def test_reject_keeps_the_reason(seller):
    handoff = HandoffFactory()

    handoff_reject(handoff=handoff, user=seller, reason="Agency, not a buyer")

    handoff.refresh_from_db()
    assert (handoff.status, handoff.close_reason) == ("rejected", "Agency, not a buyer")


def test_accept_opens_a_deal_and_makes_an_opportunity(seller):
    handoff = HandoffFactory(owner=seller)

    handoff_accept(handoff=handoff, user=seller)

    handoff.refresh_from_db()
    deal = Deal.objects.get()
    assert (deal.stage.key, deal.contact, deal.owner) == ("qualification", handoff.contact, seller)
    assert (handoff.status, handoff.deal) == ("accepted", deal)
    handoff.contact.refresh_from_db()
    assert handoff.contact.lifecycle_stage_id == "opportunity"
    assert handoff.contact.owner == seller


def test_accept_reuses_an_open_deal(seller):
    handoff = HandoffFactory(owner=seller)
    deal = DealFactory(contact=handoff.contact)

    handoff_accept(handoff=handoff, user=seller)

    assert Deal.objects.count() == 1
    assert Handoff.objects.get().deal == deal


def test_a_closed_handoff_refuses_further_actions(seller):
    handoff = HandoffFactory()
    handoff_reject(handoff=handoff, user=seller, reason="Not a fit")

    with pytest.raises(ValidationError, match="already rejected"):
        handoff_accept(handoff=handoff, user=seller)


def test_claimed_handoffs_cannot_be_claimed_by_someone_else(seller):
    other = UserFactory(username="seller-two", groups=["Sales"])
    handoff = handoff_claim(handoff=HandoffFactory(), user=seller)

    with pytest.raises(ValidationError, match="only they can work it"):
        handoff_claim(handoff=handoff, user=other)

    assert (handoff.status, handoff.owner) == ("claimed", seller)


def test_marking_contacted_stops_the_sla_clock(seller, clock):
    handoff = HandoffFactory(owner=seller)
    handoff_mark_contacted(handoff=handoff, user=seller)
    clock.advance(hours=2)

    escalated = handoff_sla_check()

    assert escalated == 0
    assert Handoff.objects.get().contacted_at is not None


# --- Demo requests ---------------------------------------------------------------------------


def test_demo_request_creates_a_task_even_below_the_threshold(handoff_rule, seller, clock):
    person = ContactFactory()

    record(person, kind="demo_requested", plan="teams")
    record(person, kind="demo_requested")  # the open task covers it

    task = Task.objects.get()
    assert (task.owner, task.contact, task.source) == (seller, person, DEMO_TASK_SOURCE)
    assert task.title == f"Demo requested: {person}"
    assert not Handoff.objects.exists()
    assert score_of(person) == 0


def test_demo_task_goes_to_the_owner_of_the_open_handoff(seller):
    handoff = HandoffFactory(owner=seller)

    record(handoff.contact, kind="demo_requested")

    assert Task.objects.get().owner == seller


# --- SLA -------------------------------------------------------------------------------------


def test_a_missed_sla_notifies_the_manager_once(handoff_rule, seller, clock):
    manager = UserFactory(username="manager")
    handoff_rule.sla_manager = manager
    handoff_rule.save()
    HandoffFactory(rule=handoff_rule, owner=seller, sla_due_at=clock.now)
    clock.advance(minutes=1)

    outcome = check_handoff_sla_task()
    check_handoff_sla_task()

    assert outcome == "1 handoffs escalated"
    assert [message.to for message in mail.outbox] == [[manager.email]]
    assert Handoff.objects.get().sla_breached_at == clock.now


def test_a_missed_sla_can_reassign_to_the_next_salesperson(
    handoff_rule, seller, clock, django_capture_on_commit_callbacks
):
    other = UserFactory(username="seller-two", groups=["Sales"])
    handoff_rule.on_sla_breach = "reassign"
    handoff_rule.save()
    handoff = HandoffFactory(rule=handoff_rule, owner=seller, sla_due_at=clock.now)
    clock.advance(minutes=1)

    with django_capture_on_commit_callbacks(execute=True):
        handoff_sla_check()

    handoff.refresh_from_db()
    assert handoff.owner == other
    assert handoff.routed_by.startswith("SLA missed")
    assert [message.to for message in mail.outbox] == [[other.email]]


# --- SLA at scale: set-based --------------------------------------------------------------


def _overdue(rule, owner, count, clock):
    return [
        HandoffFactory(rule=rule, owner=owner, sla_due_at=clock.now - datetime.timedelta(minutes=5))
        for _ in range(count)
    ]


def _sla_check_queries(django_capture_on_commit_callbacks) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        escalated = handoff_sla_check()
    return escalated, len(queries.captured_queries)


def test_the_sla_check_costs_the_same_queries_for_3_breaches_as_for_30(
    handoff_rule, seller, clock, django_capture_on_commit_callbacks
):
    manager = UserFactory(username="manager")
    UserFactory(username="seller-two", groups=["Sales"])
    handoff_rule.on_sla_breach = "reassign"
    handoff_rule.sla_manager = manager
    handoff_rule.save()
    _overdue(handoff_rule, seller, 1, clock)
    handoff_sla_check()  # the first run creates the round-robin pointer
    _overdue(handoff_rule, seller, 3, clock)
    few = _sla_check_queries(django_capture_on_commit_callbacks)
    _overdue(handoff_rule, seller, 30, clock)

    many = _sla_check_queries(django_capture_on_commit_callbacks)

    assert (few[0], many[0]) == (3, 30)
    # One read, one locking read, one claim, routing, one UPDATE of the owners, one activity
    # batch, one email: ~20 queries each time, never ~20 per handoff.
    assert many[1] == few[1] <= 30


def test_a_backlog_of_breaches_sends_the_manager_one_email_listing_them(
    handoff_rule, seller, clock
):
    manager = UserFactory(username="manager")
    handoff_rule.sla_manager = manager
    handoff_rule.save()
    late = _overdue(handoff_rule, seller, 4, clock)

    assert handoff_sla_check() == 4
    assert handoff_sla_check() == 0

    assert [message.to for message in mail.outbox] == [[manager.email]]
    message = mail.outbox[0]
    assert message.subject == "Missed SLA: 4 leads waited 30+ minutes"
    for handoff in late:
        assert f"/scoring/handoff/{handoff.pk}/change/" in message.body
    assert Handoff.objects.filter(sla_breached_at=clock.now).count() == 4


def test_reassigning_a_backlog_takes_round_robin_turns_like_one_at_a_time(
    handoff_rule, seller, clock, django_capture_on_commit_callbacks
):
    two = UserFactory(username="seller-two", groups=["Sales"])
    three = UserFactory(username="seller-three", groups=["Sales"])
    handoff_rule.on_sla_breach = "reassign"
    handoff_rule.save()
    late = _overdue(handoff_rule, seller, 4, clock)

    with django_capture_on_commit_callbacks(execute=True):
        handoff_sla_check()

    owners = [Handoff.objects.get(pk=handoff.pk).owner for handoff in late]
    assert owners == [two, three, two, three]  # the one who missed them is passed over
    assert RoundRobinPointer.objects.get(pool="sales").last_user == three
    reassigned = Activity.objects.filter(kind="handoff_reassigned").order_by("pk")
    assert [a.properties["to_owner_id"] for a in reassigned] == [o.pk for o in owners]
    assert all(a.properties["from_owner_id"] == seller.pk for a in reassigned)
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [two.email, two.email, three.email, three.email]
    )
    again = Handoff.objects.filter(pk__in=[handoff.pk for handoff in late])
    assert all(h.sla_due_at == clock.now + datetime.timedelta(minutes=30) for h in again)
    assert all(h.status == "new" and h.routed_by.startswith("SLA missed") for h in again)


def test_a_refused_sla_email_rolls_back_that_rules_claims_for_the_next_run(
    handoff_rule, seller, clock, settings
):
    from tests.sequences import backends

    settings.EMAIL_BACKEND = "tests.sequences.backends.ScriptedBackend"
    manager = UserFactory(username="manager", email="manager@nextstep.test")
    handoff_rule.sla_manager = manager
    handoff_rule.save()
    _overdue(handoff_rule, seller, 2, clock)
    backends.SCRIPT["manager@nextstep.test"] = ["503"]
    try:
        first = handoff_sla_check()
        unclaimed = Handoff.objects.filter(sla_breached_at__isnull=True).count()
        second = handoff_sla_check()
    finally:
        backends.SCRIPT.clear()

    assert (first, unclaimed, second) == (0, 2, 2)
    assert len(mail.outbox) == 1


# --- Opening many handoffs at once: set-based ------------------------------------------------


def _leads_crossing(count: int, seller) -> tuple[list, int]:
    """`count` leads crossing the threshold (and asking for a demo) in one batch: queries."""
    people = [ContactFactory(owner=seller, lifecycle_stage_id="new_lead") for _ in range(count)]
    items = [
        ActivityInput(kind=kind, source="test", contact_id=person.pk, properties=properties)
        for person in people
        for kind, properties in (
            ("page_viewed", {"path": "/pricing"}),
            ("page_viewed", {"path": "/pricing"}),
            ("demo_requested", {}),
        )
    ]
    with CaptureQueriesContext(connection) as queries:
        activity_record_batch(items=items)
    return people, len(queries.captured_queries)


def test_opening_30_handoffs_costs_the_same_queries_as_opening_3(
    scoring_rules, handoff_rule, seller
):
    handoff_rule.lifecycle_stage_id = "engaged_lead"
    handoff_rule.save()
    _leads_crossing(1, seller)  # the first batch creates the round-robin pointer and the like

    few_people, few = _leads_crossing(3, seller)
    many_people, many = _leads_crossing(30, seller)

    # Opening them one by one cost ~26 queries per lead (score parts and reasons, routing,
    # the row in a savepoint, the stage change, `handed_off`, a demo task each).
    assert many == few
    people = few_people + many_people
    handoffs = Handoff.objects.filter(contact__in=people)
    assert handoffs.count() == 33
    assert {(h.owner, h.routed_by, h.score) for h in handoffs} == {(seller, "contact owner", 60)}
    assert all(h.reasons[0]["label"].startswith("+60 Pricing") for h in handoffs)
    assert Activity.objects.filter(kind="handed_off", contact__in=people).count() == 33
    assert (
        LifecycleStageChange.objects.filter(contact__in=people, to_stage="engaged_lead").count()
        == 33
    )
    assert Task.objects.filter(contact__in=people, source=DEMO_TASK_SOURCE).count() == 33


def test_a_lead_handed_off_by_another_batch_meanwhile_is_skipped(handoff_rule, seller):
    taken, free = ContactFactory(owner=seller), ContactFactory(owner=seller)
    HandoffFactory(contact=taken, rule=handoff_rule, owner=seller)  # committed by another batch

    with transaction.atomic():
        opened = handoffs_open(
            leads=[Lead(contact=taken, rule=handoff_rule), Lead(contact=free, rule=handoff_rule)],
            now=timezone.now(),
        )

    assert [handoff.contact for handoff in opened] == [free]
    assert opened[0].pk == Handoff.objects.get(contact=free).pk
    assert Handoff.objects.filter(contact=taken).count() == 1
    assert list(Activity.objects.filter(kind="handed_off").values_list("contact", flat=True)) == [
        free.pk
    ]
