"""The product brief's questions over known data: leads, deals, segment speed, topics."""

import datetime

import pytest

from crm.models import DealStage
from crm.services import deal_create
from sequences.reports.models import HandoffFact
from sequences.reports.selectors import (
    engagement_by_topic,
    handoff_feedback,
    segment_time_to_convert,
    sequence_results,
)
from tests.factories import HandoffRuleFactory, SegmentFactory, SegmentMembershipFactory
from tests.sequences.reports.conftest import esp

pytestmark = pytest.mark.django_db


def test_handoffs_and_sales_verdicts_are_credited_to_the_sequence_and_the_email(
    mailed, record, clock
):
    from scoring.services.handoffs import handoff_accept, handoff_open, handoff_reject

    sequence, contact, hello = mailed
    esp(record, contact, "email_clicked", hello)
    clock.advance(hours=2)
    rule = HandoffRuleFactory()

    handoff = handoff_open(contact=contact, rule=rule)
    handoff_reject(handoff=handoff, reason="No budget this year")

    fact = HandoffFact.objects.get()
    assert (fact.touch_step, fact.sequence_pks, fact.outcome) == (
        "hello",
        [sequence.pk],
        "rejected",
    )
    sales = sequence_results(sequence=sequence)["sales"]
    assert (sales["handoffs"], sales["handoffs_rejected"], sales["handoffs_accepted"]) == (1, 1, 0)
    [line] = handoff_feedback(sequence=sequence)
    assert line == {
        "sequence": "welcome",
        "step": "hello",
        "outcome": "rejected",
        "reason": "No budget this year",
        "count": 1,
    }
    second = handoff_open(contact=contact, rule=rule)
    handoff_accept(handoff=second)
    steps = {line["step"]: line for line in sequence_results(sequence=sequence)["steps"]}
    assert (steps["hello"]["handoffs"], steps["hello"]["handoffs_accepted"]) == (2, 1)


def test_deals_opened_and_won_after_entering_count_for_the_sequence(mailed):
    sequence, contact, _ = mailed
    won = DealStage.objects.filter(outcome="won").first()
    opened = DealStage.objects.filter(outcome="open").first()

    deal_create(name="Big one", stage=opened, contact=contact, amount=500)
    deal_create(name="Quick one", stage=won, contact=contact, amount=1200)

    sales = sequence_results(sequence=sequence)["sales"]
    assert (sales["deals_opened"], sales["deals_opened_amount"]) == (2, 1700.0)
    assert (sales["deals_won"], sales["deals_won_amount"]) == (1, 1200.0)


def test_segments_report_the_median_days_from_entry_to_first_conversion(mailed, record, clock):
    _, contact, _ = mailed
    fast = SegmentFactory(key="fast", name="Fast")
    SegmentMembershipFactory(
        segment=fast, contact=contact, entered_at=clock.now - datetime.timedelta(days=3)
    )

    record(contact, "order_placed", order_id="A1", total="10", currency="EUR")
    record(contact, "order_placed", order_id="A2", total="10", currency="EUR")

    [line] = segment_time_to_convert()
    assert (line["segment"], line["converted"], line["median_days"]) == ("fast", 1, 3.0)
    assert line["distribution"]["1-7"] == 1


def test_engagement_is_summed_per_consent_topic(mailed, record):
    _, contact, hello = mailed
    esp(record, contact, "email_opened", hello, is_machine_open=False)

    [line] = engagement_by_topic()

    assert (line["topic"], line["sent"], line["opened"], line["clicked"]) == ("newsletter", 1, 1, 0)


def test_feedback_is_read_from_counters_by_period_and_backfilled_from_the_handoffs(
    mailed, record, clock
):
    import importlib
    from types import SimpleNamespace

    from django.db import connection
    from django.db.migrations.state import ProjectState

    from scoring.services.handoffs import handoff_open, handoff_reject
    from sequences.reports.models import ReportCount
    from sequences.reports.selectors import Period

    sequence, contact, hello = mailed
    esp(record, contact, "email_clicked", hello)
    handoff_reject(handoff=handoff_open(contact=contact, rule=HandoffRuleFactory()), reason="Later")
    today = clock.now.date()
    [line] = handoff_feedback(period=Period(today, today))
    assert (line["step"], line["outcome"], line["reason"], line["count"]) == (
        "hello",
        "rejected",
        "Later",
        1,
    )
    yesterday = today - datetime.timedelta(days=1)
    assert handoff_feedback(period=Period(yesterday, yesterday)) == []

    # Handoffs closed before the counters existed: the migration counts them, set-based.
    ReportCount.objects.filter(metric__startswith="feedback:").delete()
    assert handoff_feedback() == []
    migration = importlib.import_module(
        "sequences.reports.migrations.0003_report_months_and_squares"
    )
    editor = SimpleNamespace(connection=connection)
    migration.feedback_backfill(ProjectState().apps, editor)
    ReportCount.objects.filter(span="m").delete()
    migration.months_from_days(ProjectState().apps, editor)
    assert handoff_feedback() == [line]
