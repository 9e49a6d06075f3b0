"""seed_demo shows every part of the product: issue #12, item 9.

One full-size demo is seeded for the module (it is the slow part) and rolled back after.
What the admin shows must have been made by the product: scores by the scoring rules,
handoffs by the handoff rule, emails by the engine, ESP events by the webhook inbox.
"""

import datetime

import pytest
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django_q.models import OrmQ

from crm.demo import DEFAULT_CONTACTS, demo_seed
from crm.models import Activity, Contact
from scoring.models import Handoff, ScoreChange
from sequences.esp.simulated import ESP_NAME, ID_PREFIX
from sequences.models import Enrollment, EspEvent, OutboundMessage, Sequence
from sequences.reports.demo import DEMO_SEQUENCES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        queued_before = OrmQ.objects.count()
        result = demo_seed(contacts=DEFAULT_CONTACTS)
        yield result, OrmQ.objects.count() - queued_before
        transaction.set_rollback(True)


def test_contacts_have_scores_with_reasons(seeded):
    scored = Contact.objects.filter(lead_score__gt=0)

    assert scored.count() > DEFAULT_CONTACTS // 2
    # Every point comes from a rule, with the activity that earned it.
    assert not ScoreChange.objects.filter(rule=None).exists()
    for contact in scored[:20]:
        total = sum(ScoreChange.objects.filter(contact=contact).values_list("points", flat=True))
        assert total == contact.lead_score


def test_the_queue_has_leads_and_one_is_near_its_sla(seeded):
    now = timezone.now()
    open_handoffs = Handoff.objects.filter(status__in=Handoff.OPEN_STATUSES)
    near = open_handoffs.filter(
        status=Handoff.Status.NEW,
        sla_due_at__gt=now,
        sla_due_at__lt=now + datetime.timedelta(minutes=15),
    )
    closed = set(Handoff.objects.values_list("status", flat=True))

    assert open_handoffs.count() >= 3
    assert near.count() == 1
    assert {Handoff.Status.ACCEPTED, Handoff.Status.RECYCLED, Handoff.Status.REJECTED} <= closed
    assert Handoff.objects.exclude(sla_breached_at=None).exists()
    # Each handoff was made by the rule: it left its `handed_off` activity.
    assert Activity.objects.filter(kind=Activity.Kind.HANDED_OFF).count() == Handoff.objects.count()


def test_accepting_a_customer_lead_never_made_the_customer_an_opportunity_again(seeded):
    customers = {"new_customer", "active_customer", "at_risk_customer", "churned"}

    accepted = Handoff.objects.filter(
        status=Handoff.Status.ACCEPTED, contact__lifecycle_stage__in=customers
    )

    assert accepted.exists()


def test_enrollments_sit_at_several_steps_of_several_sequences(seeded):
    live = Enrollment.objects.filter(state=Enrollment.State.ACTIVE)
    ended = set(Enrollment.objects.values_list("state", flat=True))

    assert live.values("sequence", "current_step").distinct().count() >= 3
    assert {
        Enrollment.State.COMPLETED,
        Enrollment.State.CONVERTED,
        Enrollment.State.EXITED,
    } <= ended


def test_emails_went_to_the_simulated_esp_and_its_events_came_back_through_the_inbox(seeded):
    # The revenue demo's two sequences are history written on the ledger (sequences/reports/
    # demo.py); every other sent row went through the engine to the simulated ESP.
    sent = OutboundMessage.objects.filter(state=OutboundMessage.State.SENT).exclude(
        enrollment__sequence__key__in=[spec.key for spec in DEMO_SEQUENCES]
    )
    kinds = dict(EspEvent.objects.values_list("kind").annotate(n=Count("pk")))

    assert sent.count() > 100
    assert not sent.exclude(esp_message_id__startswith=ID_PREFIX).exists()
    assert {"delivered", "opened", "clicked", "hard_bounce", "complaint"} <= set(kinds)
    assert not EspEvent.objects.exclude(outcome=EspEvent.Outcome.PROCESSED).exists()
    assert EspEvent.objects.filter(esp="demo_esp").count() == sum(kinds.values())
    # The gate said no to some, with its reason on the ledger.
    assert (
        OutboundMessage.objects.filter(state=OutboundMessage.State.SKIPPED)
        .exclude(reason="")
        .exists()
    )
    # The webhook's effects: activities, and the complaint's sticky suppression.
    assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED, source="esp:demo_esp").exists()
    assert ESP_NAME == "Demo ESP"


def test_an_ab_test_has_a_winner(seeded):
    winners = [
        sequence.variant_winners for sequence in Sequence.objects.exclude(variant_winners={})
    ]

    assert winners == [{"welcome": "b"}]


def test_no_backlog_of_background_tasks_is_left(seeded):
    _, queued = seeded

    # Owner notices for the live lead and one segment refresh; never a task per email.
    assert queued <= 6


def test_predictions_calibration_insights_and_intent_have_something_to_show(seeded):
    # Issue #13: the demo's order histories make every prediction page meaningful.
    from crm.predictions.insights import insights_report
    from crm.predictions.models import ContactPrediction, MissedMilestone, PredictionRun
    from scoring.models import RisingIntent

    runs = dict(PredictionRun.objects.values_list("kind", "status"))
    assert runs.get("refit") == runs.get("calibration") == PredictionRun.Status.OK
    assert ContactPrediction.objects.exclude(churn_risk=None).count() > 100
    assert ContactPrediction.objects.exclude(predicted_value_12m=None).exists()
    assert insights_report(conversion_kind="order_placed").associated
    assert MissedMilestone.objects.exists()
    assert RisingIntent.objects.exists()


def test_the_revenue_view_shows_a_sequence_with_a_lift_and_one_without(seeded):
    """Issue #11: seed_demo makes every report meaningful, a visible lift and none."""
    from sequences.reports.selectors import revenue_by_day, sequence_results

    lifted, flat = (Sequence.objects.get(key=spec.key) for spec in DEMO_SEQUENCES)
    lift = sequence_results(sequence=lifted)["holdout"]
    none = sequence_results(sequence=flat)["holdout"]

    assert lift["lift"]["status"] == "significant" and lift["lift"]["difference"] > 0
    assert none["lift"]["status"] == "not yet significant"
    assert "difference" in lift["revenue_lift"]  # Welch's interval on revenue per contact
    assert revenue_by_day()
