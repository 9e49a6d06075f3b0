"""Report facts over known data: funnel counts, attribution, refunds, holdout (frozen clock)."""

import datetime
from decimal import Decimal

import pytest

from crm.models import Activity
from sequences.models import Enrollment, OutboundMessage
from sequences.reports.models import Conversion, EnrollmentFact, MessageFact
from sequences.reports.selectors import Period, sequence_results
from tests.factories import ContactFactory
from tests.sequences.conftest import build_sequence, email_step, step
from tests.sequences.reports.conftest import esp

pytestmark = pytest.mark.django_db


def test_sent_email_gets_one_message_fact_and_counts_as_sent(mailed):
    sequence, contact, message = mailed

    results = sequence_results(sequence=sequence)

    assert MessageFact.objects.get().message == message
    funnel = {stage["stage"]: stage["count"] for stage in results["funnel"]}
    assert funnel["enrolled"] == 1 and funnel["sent"] == 1
    assert results["steps"][0]["step"] == "hello" and results["steps"][0]["sent"] == 1


def test_each_funnel_stage_counts_a_message_once(mailed, record):
    sequence, contact, message = mailed

    esp(record, contact, "email_delivered", message)
    esp(record, contact, "email_opened", message, is_machine_open=False)
    esp(record, contact, "email_opened", message, is_machine_open=False)
    esp(record, contact, "email_clicked", message, url="https://x.test")
    esp(record, contact, "email_clicked", message, url="https://x.test")

    funnel = {s["stage"]: s["count"] for s in sequence_results(sequence=sequence)["funnel"]}
    assert (funnel["delivered"], funnel["opened"], funnel["clicked"]) == (1, 1, 1)


def test_machine_opens_are_counted_apart_and_never_as_human_opens(mailed, record):
    sequence, contact, message = mailed

    esp(record, contact, "email_opened", message, is_machine_open=True)

    funnel = {s["stage"]: s["count"] for s in sequence_results(sequence=sequence)["funnel"]}
    assert funnel["machine_opened"] == 1
    assert funnel["opened"] == 0 and funnel["delivered"] == 0


def test_machine_open_is_no_touch_even_when_opens_are_attributed(mailed, record, settings):
    settings.REPORT_ATTRIBUTE_OPENS = True
    sequence, contact, message = mailed
    esp(record, contact, "email_opened", message, is_machine_open=True)

    record(contact, "order_placed", order_id="A1", total="50.00", currency="EUR")

    assert Conversion.objects.get().touch_message is None


def test_order_within_the_click_window_is_credited_to_the_clicked_email(mailed, record, clock):
    sequence, contact, message = mailed
    esp(record, contact, "email_clicked", message)
    clock.advance(days=4, hours=23)

    record(contact, "order_placed", order_id="A1", total="80.00", currency="EUR")

    conversion = Conversion.objects.get()
    assert conversion.touch_message == message and conversion.touch_kind == "click"
    [hello, _] = sequence_results(sequence=sequence)["steps"]
    assert hello["attributed_conversions"] == 1 and hello["attributed_revenue"] == 80.0


def test_order_after_the_click_window_is_not_credited_to_any_email(mailed, record, clock):
    sequence, contact, message = mailed
    esp(record, contact, "email_clicked", message)
    clock.advance(days=5, minutes=1)

    record(contact, "order_placed", order_id="A1", total="80.00", currency="EUR")

    assert Conversion.objects.get().touch_message is None
    assert sequence_results(sequence=sequence)["attribution"]["touch"]["conversions"] == 0


def test_two_clicks_before_one_order_credit_it_once_to_the_last_click(mailed, record, clock):
    sequence, contact, hello = mailed
    esp(record, contact, "email_clicked", hello)
    clock.advance(days=2)
    from tests.sequences.conftest import run

    run(clock)
    offer = OutboundMessage.objects.get(step="offer")
    clock.advance(hours=1)
    esp(record, contact, "email_clicked", offer)
    clock.advance(hours=1)

    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")

    assert Conversion.objects.get().touch_message == offer
    results = sequence_results(sequence=sequence)
    by_step = {line["step"]: line["attributed_conversions"] for line in results["steps"]}
    assert by_step == {"hello": 0, "offer": 1}
    assert results["attribution"]["touch"] == results["attribution"]["touch"] | {
        "conversions": 1,
        "revenue": 30.0,
    }


def test_the_same_order_reported_twice_counts_once(mailed, record):
    sequence, contact, _ = mailed

    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")
    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")

    assert Conversion.objects.count() == 1
    holdout = sequence_results(sequence=sequence)["holdout"]
    assert holdout["mailed"]["converted"] == 1 and holdout["mailed"]["revenue"] == 30.0


def test_refund_reverses_the_conversion_and_its_revenue(mailed, record):
    sequence, contact, message = mailed
    esp(record, contact, "email_clicked", message)
    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")

    record(contact, "order_refunded", order_id="A1")

    assert Conversion.objects.get().reversed_at is not None
    results = sequence_results(sequence=sequence)
    assert results["attribution"]["touch"]["conversions"] == 0
    assert results["attribution"]["touch"]["revenue"] == 0
    assert results["holdout"]["mailed"]["converted"] == 0
    assert results["holdout"]["mailed"]["revenue"] == 0
    assert EnrollmentFact.objects.get().orders == 0


def test_revenue_is_converted_to_the_report_currency_and_keeps_the_original(
    mailed, record, settings
):
    settings.REPORT_CURRENCY_RATES = "USD=0.5"
    _, contact, _ = mailed

    record(contact, "order_placed", order_id="A1", total="30.00", currency="USD")
    record(contact, "order_placed", order_id="A2", total="10.00", currency="JPY")

    usd, jpy = Conversion.objects.order_by("key")
    assert (usd.amount, usd.currency, usd.amount_minor) == (Decimal("30.00"), "USD", 1500)
    assert (jpy.amount, jpy.currency, jpy.amount_minor) == (Decimal("10.00"), "JPY", None)


def test_won_deal_converts_and_a_lost_deal_reverses_it(mailed, record):
    sequence, contact, _ = mailed
    deal = {"deal_id": 7, "amount": "1000.00", "currency": "EUR"}

    record(contact, "deal_stage_changed", **deal, outcome="won", to="won")
    sales = sequence_results(sequence=sequence)["sales"]
    record(contact, "deal_stage_changed", **deal, outcome="lost", to="lost")

    assert sales["deals_won"] == 1 and sales["deals_won_amount"] == 1000.0
    assert sequence_results(sequence=sequence)["sales"]["deals_won"] == 0
    assert Conversion.objects.get(key="deal:7").reversed_by == "deal_lost"


def test_a_second_order_within_the_repeat_window_is_credited_to_the_first_orders_email(
    mailed, record, clock
):
    from sequences.reports.selectors import repeat_purchases

    sequence, contact, message = mailed
    esp(record, contact, "email_clicked", message)
    record(contact, "order_placed", order_id="A1", total="30.00", currency="EUR")
    clock.advance(days=20)

    record(contact, "order_placed", order_id="A2", total="45.00", currency="EUR")

    [line] = repeat_purchases()
    assert (line["sequence"], line["step"]) == ("welcome", "hello")
    assert (line["attributed"], line["repeat_orders"], line["repeat_revenue"]) == (1, 1, 45.0)


def test_goal_conversion_and_exits_are_counted_by_reason(clock, consenting_contact, record):
    sequence = build_sequence(
        [
            email_step("hello"),
            step("pause", "wait_duration", duration={"days": 2}),
            email_step("offer"),
        ],
        goal_conditions=[{"activity": "order_placed"}],
    )
    record(consenting_contact, "form_submitted")

    record(consenting_contact, "order_placed", order_id="A1", total="5", currency="EUR")

    assert Enrollment.objects.get(contact=consenting_contact).state == "converted"
    results = sequence_results(sequence=sequence)
    funnel = {s["stage"]: s["count"] for s in results["funnel"]}
    assert funnel["converted"] == 1
    [exit_line] = results["exits"]
    # The step it ended before: the wait had moved it on to "offer", not yet sent.
    assert exit_line["state"] == "converted" and exit_line["step"] == "offer"


def test_period_filter_leaves_out_other_days(mailed, clock):
    sequence, _, _ = mailed
    tomorrow = clock.now.date() + datetime.timedelta(days=1)

    results = sequence_results(sequence=sequence, period=Period(since=tomorrow))

    assert {s["stage"]: s["count"] for s in results["funnel"]}["sent"] == 0


def test_counting_a_batch_takes_a_fixed_number_of_queries(
    mailed, record, django_assert_max_num_queries
):
    from crm.services import ActivityInput, activity_record_batch

    _, contact, message = mailed
    contacts = [contact] + ContactFactory.create_batch(20)
    items = [
        ActivityInput(
            kind=kind,
            source="esp:postmark",
            contact_id=c.pk,
            properties={"message_uuid": str(message.uuid), "order_id": f"O{c.pk}", "total": "9"},
            idempotency_key=f"{kind}{c.pk}",
        )
        for c in contacts
        for kind in ("email_clicked", "order_placed")
    ]

    with django_assert_max_num_queries(40):
        activity_record_batch(items=items)

    assert Conversion.objects.count() == 21
    assert Activity.objects.filter(kind="order_placed").count() == 21


def test_a_second_email_counts_the_person_emailed_once_at_the_first_time(mailed, clock):
    """The people funnel stages are written set-based (facts._people_reached): a stage
    already reached keeps its first time, and the person is counted once."""
    from sequences.services import enrollments_run_due

    sequence, contact, first = mailed
    first.refresh_from_db()
    clock.advance(days=3)

    assert enrollments_run_due(now=clock.now).emails_sent == 1

    fact = EnrollmentFact.objects.get()
    assert fact.emailed_at == first.sent_at
    results = sequence_results(sequence=sequence)
    funnel = {stage["stage"]: stage["count"] for stage in results["funnel"]}
    assert funnel["sent"] == 1
    assert sorted(row["sent"] for row in results["steps"] if row["step"]) == [1, 1]


def test_deferred_counters_are_written_at_the_end_without_rolled_back_work(db):
    import pytest as _pytest
    from django.db import transaction

    from sequences.reports.counts import Key, Tally, report_counts_add, report_counts_deferred
    from sequences.reports.models import ReportCount

    def tally(metric):
        counted = Tally()
        counted.add(Key(day=datetime.date(2026, 3, 10), metric=metric, sequence_pk=1))
        return counted

    with transaction.atomic(), report_counts_deferred():
        report_counts_add(tally("sent"))
        report_counts_add(tally("sent"))
        assert not ReportCount.objects.exists()  # nothing written inside the block
        with _pytest.raises(RuntimeError), transaction.atomic():
            report_counts_add(tally("rolled_back"))
            raise RuntimeError

    counts = dict(ReportCount.objects.filter(span="d").values_list("metric", "count"))
    assert counts == {"sent": 2}
